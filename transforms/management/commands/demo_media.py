"""Put demo media into MEDIA_ROOT so the front page shows something on a new install.

Copies the public-domain/CC0 photos shipped in ``transforms/demo`` (with their
licence file), draws one large JPEG with Pillow and makes a short clip with
ffmpeg's test pattern and a tone, so the front page shows video too. Existing
files are left alone.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from PIL import Image, ImageDraw

from transforms.conf import conf

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
        clip = root / "demo-clip-720p.mp4"
        if not clip.exists():
            problem = make_demo_clip(clip)
            if problem:
                self.stderr.write(f"no demo clip: {problem}")
            else:
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


def make_demo_clip(path: Path, seconds: int = 10) -> str | None:
    """A 10 s 1280x720 H.264/AAC clip (moving test pattern, 440 Hz tone); the problem, or None.

    Written to a temporary name first, so an interrupted run never leaves half a clip.
    """
    partial = path.with_name(f".{path.name}.partial")
    argv = [
        conf.FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=25:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
        "-movflags", "+faststart", "-f", "mp4", str(partial),
    ]  # fmt: skip
    try:
        subprocess.run(argv, check=True, timeout=120, stdin=subprocess.DEVNULL, capture_output=True)
    except (OSError, subprocess.SubprocessError) as exc:
        partial.unlink(missing_ok=True)
        return str(exc)
    partial.replace(path)
    return None
