"""Find a source under MEDIA_ROOT and read what it is from its header.

``resolve`` is the only way a request path becomes a filesystem path: it rejects
``..``, absolute paths, hidden names and anything whose real path (after
symlinks) leaves MEDIA_ROOT. ``open_image`` parses the header once per request
and ``describe`` reads dimensions and orientation from it, so limits are checked
before any decoding starts.
"""

from __future__ import annotations

import os
import stat
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from PIL import Image, UnidentifiedImageError

from . import jpeg12
from .conf import conf
from .errors import CorruptSource, SourceNotFound, SourceTooLarge, UnsupportedSource
from .formats import media_kind

# Pillow's own bomb check fires only past 2x this; we check our limit ourselves
# before decoding, so Pillow only needs to stop the truly absurd (and need not warn
# about what our own check refuses anyway).
Image.MAX_IMAGE_PIXELS = 200_000_000
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

PILLOW_FORMATS = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "AVIF": "avif", "MPO": "jpeg",
                  "TIFF": "tiff", "HEIF": "heic", jpeg12.FORMAT: "jpeg12"}  # fmt: skip
# Formats Pillow identifies that are not images to serve: they go on to ffprobe (MPEG is video).
PASSED_TO_FFPROBE = frozenset({"MPEG"})
TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}

# Pillow's own plugins first (so an 8-bit JPEG never meets the 12-bit one), then ours.
Image.preinit()
jpeg12.register()
try:  # HEIC/HEIF (phone photos) through libheif; without pillow-heif they are refused by name
    import pillow_heif
except ImportError:  # pragma: no cover - pillow-heif is in requirements.txt
    pillow_heif = None
else:
    pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


@dataclass(frozen=True)
class Source:
    """A regular file inside MEDIA_ROOT, with the stat that names its version."""

    path: Path
    name: str  # the request path, relative to MEDIA_ROOT, '/'-separated
    size: int
    mtime_ns: int
    device: int = 0
    inode: int = 0

    @property
    def version(self) -> str:
        return f"{self.size}-{self.mtime_ns}"

    @property
    def identity(self) -> tuple[int, int, int, int]:
        """What the file was when resolved: a later stat that differs means another file or version."""
        return self.device, self.inode, self.size, self.mtime_ns


def media_root() -> Path:
    return Path(os.path.realpath(settings.MEDIA_ROOT))


def requested_path(source: Source) -> str:
    """The path as requested, symlinks unresolved: its stat tells whether the name still means this file."""
    return os.path.join(settings.MEDIA_ROOT, *source.name.split("/"))


def resolve(name: str) -> Source:
    """Turn a request path into a Source or raise SourceNotFound (never anything outside the root)."""
    parts = name.split("/")
    if (
        not name
        or "\0" in name
        or "\\" in name
        or name.startswith("/")
        or any(part in ("", ".", "..") or part.startswith(".") for part in parts)
    ):
        raise SourceNotFound("no such media file", path=name)
    try:
        root, _ = real_path_and_stat(settings.MEDIA_ROOT)
        real, info = real_path_and_stat(os.path.join(root, *parts))
    except OSError:
        raise SourceNotFound("no such media file", path=name) from None
    if os.path.commonpath([root, real]) != root or real == root or not stat.S_ISREG(info.st_mode):
        raise SourceNotFound("no such media file", path=name)
    return Source(Path(real), name, info.st_size, info.st_mtime_ns, info.st_dev, info.st_ino)


def real_path_and_stat(path: str | os.PathLike) -> tuple[str, os.stat_result]:
    """``path`` with every symlink resolved, and the stat of the file it names; OSError if there is none.

    On Linux the kernel resolves the path once: an O_PATH descriptor (which opens
    nothing for reading, so a FIFO cannot block), its name read back from
    /proc/self/fd, and fstat of that same inode. That is four system calls
    instead of ``os.path.realpath``'s lstat per path component in Python, paid
    by every media request. Elsewhere, or without /proc, realpath and stat.
    """
    if hasattr(os, "O_PATH"):
        descriptor = os.open(path, os.O_PATH | os.O_CLOEXEC)
        try:
            info = os.fstat(descriptor)
            try:
                return os.readlink(f"/proc/self/fd/{descriptor}"), info
            except OSError:
                pass  # no /proc: fall through
        finally:
            os.close(descriptor)
    real = os.path.realpath(path)
    return real, os.stat(real)


@dataclass(frozen=True)
class ImageInfo:
    format: str  # jpeg, png, webp, gif, avif, tiff, heic, jpeg12
    width: int  # after EXIF orientation
    height: int
    orientation: int
    mode: str
    frames: int

    @property
    def has_alpha(self) -> bool:
        return self.mode in ("RGBA", "LA", "PA", "La", "RGBa") or self.mode == "P" and self.format in ("png", "gif")

    @property
    def pixels(self) -> int:
        return self.width * self.height


def open_image(source: Source) -> Image.Image | None:
    """The source with its header parsed by Pillow (nothing decoded), or None when it is not a served image.

    Done once per request: the same parsed header picks the image or the video
    path, gives ``describe`` its facts and is what the Pillow engine decodes, so
    the file is not opened and its markers parsed three times. The caller closes
    the image. A file Pillow recognises but cannot parse is an image with a
    damaged header (CorruptSource), so the image path reports the damage.
    """
    if source.size == 0:
        return None
    try:
        image = Image.open(source.path)
    except UnidentifiedImageError:
        return None
    except Image.DecompressionBombError:
        raise SourceTooLarge(
            "the image declares more pixels than the limit", path=source.name, limit_pixels=conf.MAX_PIXELS
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise CorruptSource(f"the image header is damaged: {exc}", path=source.name) from None
    if image.format not in PILLOW_FORMATS:
        name = image.format
        image.close()
        if name in PASSED_TO_FFPROBE or media_kind(source.name) in ("video", "audio"):
            return None  # Pillow's guess is weak (TGA has no magic number): a clip's name gets ffprobe
        raise UnsupportedSource(f"the file is a {name} image, a format this service does not read",
                                path=source.name, format=name, accepted="JPEG, PNG, WebP, GIF, AVIF, TIFF, HEIC")
    return image


@contextmanager
def opened_image(source: Source) -> Iterator[Image.Image | None]:
    """``open_image`` for the length of a ``with`` block, closed at its end."""
    image = open_image(source)
    try:
        yield image
    finally:
        if image is not None:
            image.close()


def require_image(source: Source) -> Image.Image:
    """``open_image`` for callers that only take images: anything else is refused."""
    if source.size == 0:
        raise CorruptSource("the file is empty", path=source.name)
    image = open_image(source)
    if image is None:
        raise UnsupportedSource("the file is not an image this service can read", path=source.name)
    return image


def probe_image(source: Source) -> ImageInfo:
    """Read the header; refuse what is not an image, is damaged, or is over the limits."""
    with require_image(source) as image:
        return describe(source, image)


def describe(source: Source, image: Image.Image) -> ImageInfo:
    """What an opened image is, after checking the byte and pixel limits: header facts only, no decoding."""
    if source.size > conf.MAX_SOURCE_BYTES:
        raise SourceTooLarge(
            "the source file is larger than the limit", path=source.name, limit_bytes=conf.MAX_SOURCE_BYTES
        )
    width, height = image.size
    if width * height > conf.MAX_PIXELS:
        raise SourceTooLarge(
            f"the image is {width}x{height}, more pixels than the limit",
            path=source.name,
            limit_pixels=conf.MAX_PIXELS,
        )
    return header_facts(source, image)


def header_facts(source: Source, image: Image.Image) -> ImageInfo:
    """The header's facts without the limits (``info=1`` reports them for any size): nothing decoded."""
    fmt = PILLOW_FORMATS[image.format]
    width, height = image.size
    if width < 1 or height < 1:
        raise CorruptSource("the image has no pixels", path=source.name)
    orientation = exif_orientation(image)
    if orientation in TRANSPOSING_ORIENTATIONS:
        width, height = height, width
    try:
        frames = getattr(image, "n_frames", 1)
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise CorruptSource(f"the image's frames are damaged: {exc}", path=source.name) from None
    return ImageInfo(fmt, width, height, orientation, image.mode, frames)


def exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation (1-8) from the header; 1 when absent or unreadable.

    A PNG whose header carries no eXIf chunk counts as upright: Pillow would look
    for one after the pixel data by decoding the whole image, which must not
    happen before the limits are checked and a work slot is taken.
    """
    if image.format == "PNG" and "exif" not in image.info:
        return 1
    try:
        orientation = int(image.getexif().get(0x0112, 1) or 1)
    except (OSError, SyntaxError, ValueError, ZeroDivisionError, struct.error):
        return 1  # unreadable EXIF: treat as upright rather than refuse the image
    return orientation if orientation in range(1, 9) else 1
