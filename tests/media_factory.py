"""Test fixtures made on the spot: images drawn with Pillow, damaged copies, odd headers.

Nothing here needs ../shared; that corpus is an extra, used when present.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from PIL import Image, ImageCms, ImageDraw

SHARED_MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"


def photo(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """A card with a distinct colour in each quadrant, so crops and rotations can be told apart."""
    image = Image.new("RGB", (width, height), (128, 128, 128))
    draw = ImageDraw.Draw(image)
    half_w, half_h = width // 2, height // 2
    draw.rectangle([0, 0, half_w, half_h], fill=(255, 0, 0))  # top left: red
    draw.rectangle([half_w, 0, width, half_h], fill=(0, 255, 0))  # top right: green
    draw.rectangle([0, half_h, half_w, height], fill=(0, 0, 255))  # bottom left: blue
    draw.rectangle([half_w, half_h, width, height], fill=(255, 255, 0))  # bottom right: yellow
    return image.convert(mode) if mode != "RGB" else image


def save(image: Image.Image, path: Path, fmt: str | None = None, **params) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, fmt, **params)
    return path


def jpeg_with_orientation(path: Path, orientation: int, width: int = 400, height: int = 200) -> Path:
    """A JPEG stored as ``width``x``height`` whose EXIF says how to turn it upright."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return save(photo(width, height), path, "JPEG", exif=exif.tobytes(), quality=95)


def cmyk_jpeg(path: Path) -> Path:
    return save(photo(200, 100).convert("CMYK"), path, "JPEG")


def png_16bit_grey(path: Path) -> Path:
    image = Image.new("I;16", (64, 32))
    image.putdata([(x * 1024) % 65536 for x in range(64 * 32)])
    return save(image, path, "PNG")


def palette_png_with_alpha(path: Path) -> Path:
    image = Image.new("P", (120, 60), 0)
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    ImageDraw.Draw(image).rectangle([60, 0, 120, 60], fill=1)
    return save(image, path, "PNG", transparency=0)


def adobe_rgb_jpeg(path: Path) -> Path:
    """An RGB JPEG carrying a non-sRGB ICC profile (LAB-derived), to check conversion to sRGB."""
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB"))
    return save(photo(100, 100), path, "JPEG", icc_profile=profile.tobytes())


def truncated(source: Path, path: Path, keep: float = 0.5) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def png_pixel_bomb(path: Path, width: int = 30000, height: int = 30000) -> Path:
    """A tiny PNG whose header declares ``width``x``height`` pixels (the data is not there)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\0" * 1024)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def clip(
    path: Path,
    seconds: float = 2.0,
    size: str = "320x180",
    fps: int = 24,
    audio: bool = True,
    codec: str = "libx264",
) -> Path:
    """A real clip drawn by ffmpeg's ``testsrc2`` (with a sine tone when ``audio``)."""
    import subprocess

    path.parent.mkdir(parents=True, exist_ok=True)
    argv = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}"]
    if audio:
        argv += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac", "-shortest"]
    argv += ["-c:v", codec, "-pix_fmt", "yuv420p", *(["-b:a", "32k"] if audio and seconds > 60 else [])]
    if codec == "libx264":
        argv += ["-preset", "ultrafast", "-movflags", "+faststart"]
    subprocess.run([*argv, str(path)], check=True, timeout=60)
    return path
