"""Put demo media into MEDIA_ROOT so the front page shows something on a new install.

Copies the public-domain/CC0 photos shipped in ``transforms/demo`` (with their
licence file) and draws one large JPEG with Pillow. Existing files are left alone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from PIL import Image, ImageDraw

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"


class Command(BaseCommand):
    help = "Copy the demo photos into MEDIA_ROOT and draw a large test image."

    def handle(self, *args, **options) -> None:
        root = Path(settings.MEDIA_ROOT)
        root.mkdir(parents=True, exist_ok=True)
        made = 0
        for item in sorted(DEMO_DIR.iterdir()):
            target = root / item.name
            if item.is_file() and not target.exists():
                shutil.copyfile(item, target)
                made += 1
        drawn = root / "generated-4000x3000.jpg"
        if not drawn.exists():
            draw_test_card(4000, 3000).save(drawn, quality=90)
            made += 1
        self.stdout.write(f"demo media in {root}: {made} file(s) added")


def draw_test_card(width: int, height: int) -> Image.Image:
    """A colourful card with gradients and edges, so resampling quality is visible."""
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    red = Image.linear_gradient("L").rotate(90).resize((width, height))
    image = Image.merge("RGB", (red, image.getchannel("G"), Image.radial_gradient("L").resize((width, height))))
    draw = ImageDraw.Draw(image)
    step = max(width, height) // 20
    for x in range(0, width, step):
        draw.line([(x, 0), (x, height)], fill=(255, 255, 255), width=3)
    for y in range(0, height, step):
        draw.line([(0, y), (width, y)], fill=(0, 0, 0), width=3)
    draw.ellipse([width // 4, height // 4, 3 * width // 4, 3 * height // 4], outline=(255, 220, 0), width=12)
    return image
