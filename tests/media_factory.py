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


# --- sources beyond the browser formats: TIFF, 12-bit JPEG, HEIC --------------------------------

TIFF_TYPES = {"short": 3, "long": 4}
PHOTOMETRIC = {1: 1, 2: 1, 3: 2, 4: 2}  # samples -> grey (1, +alpha) or RGB (3, +alpha); CMYK passed explicitly


def tiff(path: Path, pages: list, bits: int = 8, photometric: int | None = None,
         declared: tuple[int, int] | None = None) -> Path:
    """An uncompressed TIFF of numpy arrays (H x W x samples, uint8 or uint16), one page each.

    ``declared`` writes that size in the first page's header instead of the array's (a bomb).
    Pillow writes neither 16-bit colour nor CMYK+16 TIFFs, hence this small writer.
    """
    import numpy as np

    out = bytearray(b"II*\0\0\0\0\0")
    next_pointer = 4
    for number, page in enumerate(pages):
        page = np.asarray(page)
        page = page[:, :, None] if page.ndim == 2 else page
        height, width, samples = page.shape
        if number == 0 and declared:
            width, height = declared
        data = page.astype("<u2" if bits == 16 else "u1").tobytes()
        data_offset = len(out)
        out += data
        bits_offset = len(out)
        out += struct.pack(f"<{samples}H", *([bits] * samples))
        entries = [(256, "long", width), (257, "long", height), (258, "short", bits if samples == 1 else bits_offset),
                   (259, "short", 1), (262, "short", photometric or PHOTOMETRIC[samples]), (273, "long", data_offset),
                   (277, "short", samples), (278, "long", height), (279, "long", len(data)), (284, "short", 1)]
        if samples in (2, 4) and photometric != 5:
            entries.append((338, "short", 2))  # the extra sample is unassociated alpha
        entries.sort()
        if len(out) % 2:
            out += b"\0"
        struct.pack_into("<I", out, next_pointer, len(out))
        out += struct.pack("<H", len(entries))
        for tag, kind, value in entries:
            count = samples if tag == 258 and samples > 1 else 1
            packed = struct.pack("<HHI", tag, TIFF_TYPES[kind], count)
            packed += struct.pack("<I", value) if kind == "long" or count > 1 else struct.pack("<HH", value, 0)
            out += packed
        next_pointer = len(out)
        out += b"\0\0\0\0"
    path.write_bytes(bytes(out))
    return path


def quadrant_array(width: int, height: int, top: int = 255):
    """``photo()``'s four colours as an RGB array whose full scale is ``top`` (255 or 65535)."""
    import numpy as np

    return (np.asarray(photo(width, height), dtype=np.float64) * (top / 255)).round()


def jpeg12(path: Path, image: Image.Image) -> Path:
    """A 12-bit (extended sequential, SOF1) YCbCr JPEG of ``image``, drawn in flat 8x8 blocks.

    No tool here writes 12-bit JPEGs (libjpeg-turbo is built for 8 bits), so this writes
    one: every block keeps only its DC coefficient (quantiser 1), coded with Huffman tables
    made for it. The picture is ``image`` averaged per 8x8 block, at 12-bit precision.
    """
    import numpy as np

    width, height = image.size
    ycc = np.asarray(image.convert("YCbCr"), dtype=np.float64) * 16  # 8-bit -> 12-bit scale
    blocks_x, blocks_y = -(-width // 8), -(-height // 8)
    padded = np.zeros((blocks_y * 8, blocks_x * 8, 3))
    padded[:height, :width] = ycc
    padded[height:, :] = padded[height - 1 : height, :]
    padded[:, width:] = padded[:, width - 1 : width]
    means = padded.reshape(blocks_y, 8, blocks_x, 8, 3).mean(axis=(1, 3))
    dc = np.round((means - 2048) * 8).astype(int)  # F(0,0) of a flat block is 8 x (level-shifted value)

    dc_codes = {size: (size, 4) for size in range(15)} | {15: (0b11110, 5)}  # category -> (code, length)
    bits = _BitWriter()
    previous = [0, 0, 0]
    for row in range(blocks_y):
        for column in range(blocks_x):
            for component in range(3):
                difference = int(dc[row, column, component]) - previous[component]
                previous[component] += difference
                size = abs(difference).bit_length()
                bits.write(*dc_codes[size])
                if size:
                    bits.write(difference if difference > 0 else difference + (1 << size) - 1, size)
                bits.write(0, 1)  # end of block: the AC table's only code
    def segment(marker: int, payload: bytes) -> bytes:
        return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload

    dc_table = bytes([0x00]) + bytes([0, 0, 0, 15, 1] + [0] * 11) + bytes(range(16))
    ac_table = bytes([0x10]) + bytes([1] + [0] * 15) + bytes([0])
    frame = struct.pack(">BHHB", 12, height, width, 3) + b"".join(bytes([i, 0x11, 0]) for i in (1, 2, 3))
    scan = bytes([3]) + b"".join(bytes([i, 0x00]) for i in (1, 2, 3)) + bytes([0, 63, 0])
    path.write_bytes(b"\xff\xd8" + segment(0xDB, bytes([0]) + bytes([1] * 64)) + segment(0xC1, frame)
                     + segment(0xC4, dc_table) + segment(0xC4, ac_table) + segment(0xDA, scan)
                     + bits.finish() + b"\xff\xd9")
    return path


class _BitWriter:
    """Entropy-coded JPEG data: bits MSB first, 0xFF stuffed with 0x00, padded with ones."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.value = 0
        self.count = 0

    def write(self, value: int, length: int) -> None:
        for shift in range(length - 1, -1, -1):
            self.value = (self.value << 1) | ((value >> shift) & 1)
            self.count += 1
            if self.count == 8:
                self.out.append(self.value)
                if self.value == 0xFF:
                    self.out.append(0)
                self.value = self.count = 0

    def finish(self) -> bytes:
        if self.count:
            self.write((1 << (8 - self.count)) - 1, 8 - self.count)
        return bytes(self.out)


def heic(path: Path, image: Image.Image, declared: tuple[int, int] | None = None, **params) -> Path:
    """A HEIC (pillow-heif's x265); ``declared`` rewrites the size its ``ispe`` box claims (a bomb)."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    image.save(path, "HEIF", **params)
    if declared:
        data = bytearray(path.read_bytes())
        at = data.index(b"ispe") + 8  # after the box type and its version/flags
        struct.pack_into(">II", data, at, *declared)
        path.write_bytes(bytes(data))
    return path
