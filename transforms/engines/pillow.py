"""The in-process engine: Pillow.

It decodes no more pixels than it needs: a JPEG is opened with ``draft`` (the
decoder scales by 1/2, 1/4 or 1/8 in the DCT domain), and the final resample is
one ``resize`` with a source ``box`` (the crop, for fit=cover) and a
``reducing_gap`` (an integer ``reduce`` first), so a crop never forces a
full-resolution decode. EXIF orientation is applied, colours are converted to
sRGB from an embedded ICC profile, and no metadata is written out.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Callable
from functools import lru_cache

import PIL
from PIL import Image, ImageCms, ImageFilter

from ..conf import conf
from ..content import smart_plan, trimmed_region
from ..errors import CorruptSource, NotApplicable
from ..formats import IMAGE_FORMATS
from ..geometry import Plan, plan_for
from ..orientation import shown_size
from .base import Engine, ImageJob

REVISION = 1
SHARPEN_PERCENT = 120
# Encodes max_bytes may try after the first two (the asked quality and TRANSFORMS_MIN_QUALITY).
MAX_BYTES_STEPS = 4

ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, ImageCms.PyCMSError)

# Freed image buffers Pillow keeps for reuse (its default is none). Under gunicorn's threads
# every decode otherwise gets fresh pages from the kernel: measured 115 page faults and about
# 0.3-0.4 ms of CPU per 1920x1080 thumbnail, against 20-40 faults with a pool of 8. A larger
# PILLOW_BLOCKS_MAX in the environment (read by Pillow itself) is kept.
BLOCKS_KEPT = 8
Image.core.set_blocks_max(max(Image.core.get_blocks_max(), BLOCKS_KEPT))


class PillowEngine(Engine):
    name = "pillow"
    input_formats = frozenset({"jpeg", "png", "webp", "gif", "avif", "tiff", "heic", "jpeg12"})
    output_formats = frozenset(IMAGE_FORMATS)
    operations = frozenset({"blur", "sharpen", "trim", "gravity=smart", "max_bytes"})

    def check(self) -> str | None:
        return None

    def version(self) -> str:
        return f"pillow:{PIL.__version__}:{REVISION}"

    def render(self, job: ImageJob, *, deadline: float, on_close: Callable[[], None]) -> bytes:
        try:
            if job.opened is not None:
                return encode(transform(job.opened, job), job)
            with Image.open(job.source.path) as image:
                return encode(transform(image, job), job)
        except DECODE_ERRORS as exc:
            raise CorruptSource(f"the image could not be decoded: {exc}", path=job.source.name) from None
        finally:
            on_close()


def transform(image: Image.Image, job: ImageJob) -> Image.Image:
    """Decode at the smallest useful scale, orient, normalise the mode, trim, crop+resize, filter, pad."""
    plan = job.plan
    if image.format == "JPEG" and plan.scale < 1 and not plan.trim:  # trim may keep less: decode it all
        wanted = (math.ceil(plan.source[0] * plan.scale), math.ceil(plan.source[1] * plan.scale))
        image.draft(image.mode, shown_size(wanted, job.orientation))
    image.load()
    transpose = ORIENTATION_TRANSPOSE.get(job.orientation)
    if transpose is not None:
        image = image.transpose(transpose)
    image = to_srgb(image)
    plan = settled(image, job)

    if plan.crop is not None or image.size != plan.resize:
        box = plan.crop_in(image.width, image.height)
        image = image.resize(plan.resize, Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)
    if job.spec.blur is not None:
        image = image.filter(ImageFilter.GaussianBlur(job.spec.blur))
    if job.spec.sharpen is not None:
        image = image.filter(ImageFilter.UnsharpMask(radius=job.spec.sharpen, percent=SHARPEN_PERCENT, threshold=0))

    if plan.canvas is not None:
        canvas = Image.new(image.mode, plan.canvas, background(job, image.mode))
        canvas.paste(image, plan.offset)
        image = canvas
    return image


def settled(image: Image.Image, job: ImageJob) -> Plan:
    """The plan once the pixels are known: re-planned on the trimmed content, the crop moved by gravity=smart."""
    plan = job.plan
    if plan.trim:
        region = trimmed_region(image, plan, int(conf.TRIM_TOLERANCE))
        if region is not None:
            plan = plan_for(plan.source, job.spec, region=region)
    if plan.smart:
        plan = smart_plan(image, plan)
    return plan


def to_srgb(image: Image.Image) -> Image.Image:
    """Return an image in L, RGB or RGBA, in sRGB when it carried an ICC profile."""
    icc = image.info.get("icc_profile")
    if icc and image.mode in ("RGB", "RGBA", "CMYK", "L"):
        try:
            source_profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            output_mode = "RGBA" if image.mode == "RGBA" else "RGB"
            if image.mode == "L":
                output_mode = "L"
            converted = ImageCms.profileToProfile(image, source_profile, srgb_profile(), outputMode=output_mode)
            if converted is not None:
                image = converted
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: keep the pixels as they are
    if image.mode.startswith("I"):
        image = deep_grey_to_l(image)
    elif image.mode == "F":
        image = image.convert("L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode in ("LA", "PA", "La", "RGBa"):
        image = image.convert("RGBA")
    elif image.mode == "1":
        image = image.convert("L")
    elif image.mode not in ("L", "RGB", "RGBA"):
        image = image.convert("RGB")
    return image


def deep_grey_to_l(image: Image.Image) -> Image.Image:
    """16/32-bit greyscale to 8 bits by scaling (Pillow's plain convert("L") clips instead)."""
    if image.mode != "I":
        image = image.convert("I")
    high = image.getextrema()[1]
    divisor = 256 if high > 255 else 1
    return image.point(lambda value: value * (1 / divisor)).convert("L")


@lru_cache(maxsize=1)
def srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def background(job: ImageJob, mode: str) -> tuple[int, ...] | int:
    red, green, blue = job.background_rgb
    if mode == "L":
        return round(0.299 * red + 0.587 * green + 0.114 * blue)
    if mode == "RGBA":
        return (red, green, blue, 255)
    return (red, green, blue)


def flatten(image: Image.Image, job: ImageJob) -> Image.Image:
    """Put an image with alpha on the background colour (for formats without alpha)."""
    if image.mode != "RGBA":
        return image
    flat = Image.new("RGB", image.size, job.background_rgb)
    flat.paste(image, mask=image.getchannel("A"))
    return flat


def encode(image: Image.Image, job: ImageJob) -> bytes:
    """The encoded result; with max_bytes, at the highest quality (in a few bisection steps) that fits."""
    data = encoded(image, job, job.quality)
    budget = job.spec.max_bytes
    if budget is None or len(data) <= budget:
        return data
    low, high = int(conf.MIN_QUALITY), job.quality - 1
    best = encoded(image, job, low) if low <= high else data
    if len(best) > budget:
        raise NotApplicable(
            "max_bytes", f"even at quality {low} the result is {len(best)} bytes, over the {budget} byte budget",
            accepted="a larger max_bytes, or a smaller size", smallest_bytes=len(best),
        )
    for _ in range(MAX_BYTES_STEPS):
        if high - low <= 1:
            break
        middle = (low + high) // 2
        attempt = encoded(image, job, middle)
        if len(attempt) <= budget:
            best, low = attempt, middle
        else:
            high = middle
    return best


def encoded(image: Image.Image, job: ImageJob, quality: int) -> bytes:
    out = io.BytesIO()
    if job.format == "jpeg":
        flatten(image, job).save(out, "JPEG", quality=quality)
    elif job.format == "png":
        image.save(out, "PNG", compress_level=6)
    elif job.format == "webp":
        image.save(out, "WEBP", quality=quality, method=4)
    elif job.format == "avif":
        image.save(out, "AVIF", quality=quality, speed=8)
    elif job.format == "gif":
        flatten(image, job).convert("P", palette=Image.Palette.ADAPTIVE).save(out, "GIF")
    else:
        raise ValueError(f"unknown output format {job.format}")
    return out.getvalue()
