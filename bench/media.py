"""Inputs for the benchmarks, made on the spot: a still drawn with Pillow, a clip drawn by ffmpeg.

bench/ does not import tests/: a benchmark has to run from a checkout whatever state
its test suite is in, and what it measures depends on its inputs, which are chosen
here. The names (``photo``, ``save``, ``clip``) are those of ``tests.media_factory``,
so a script that used to borrow them reads the same.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from PIL import Image

GREY = (128, 128, 128)
# Top left, top right, bottom left, bottom right: flat areas that JPEG compresses like a
# simple photo, with edges a resize has to keep.
QUADRANTS = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0))


def photo(width: int, height: int) -> Image.Image:
    """A ``width`` x ``height`` card of four coloured quadrants on grey."""
    image = Image.new("RGB", (width, height), GREY)
    columns, rows = (0, width // 2, width), (0, height // 2, height)
    for index, colour in enumerate(QUADRANTS):
        column, row = index % 2, index // 2
        image.paste(colour, (columns[column], rows[row], columns[column + 1], rows[row + 1]))
    return image


def save(image: Image.Image, path: Path, **params: object) -> Path:
    """``image`` written to ``path`` (format from the suffix), folders made as needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **params)
    return path


def clip(path: Path, seconds: float = 2.0, size: str = "320x180", fps: int = 24, preset: str = "ultrafast") -> Path:
    """An H.264/AAC MP4 of ffmpeg's moving test pattern and a 440 Hz tone, index first so it streams."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pattern = f"testsrc2=size={size}:rate={fps}:duration={seconds}"
    tone = f"sine=frequency=440:duration={seconds}"
    encode = ["-c:v", "libx264", "-preset", preset, "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"]
    argv = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", pattern, "-f", "lavfi", "-i", tone, *encode, "-movflags", "+faststart", str(path)]
    subprocess.run(argv, check=True, timeout=120, stdin=subprocess.DEVNULL)
    return path
