"""``GET /<path>?info=1``: what a source is, as JSON, without decoding a pixel.

Images are described from the header Pillow already parsed (size after EXIF orientation,
orientation, alpha, bit depth, colour profile, frames); video and audio from ffprobe's
report (container, duration, picture size as shown, codecs, every stream), the same cached
probe the transcodes use. The answer carries the order's ETag and Cache-Control, so a
client revalidates it with If-None-Match like any transform.
"""

from __future__ import annotations

import io

from django.http import JsonResponse
from PIL import Image, ImageCms

from .formats import SOURCE_CONTENT_TYPES
from .planning import Order
from .probe import probe_media
from .sources import Source, header_facts

# Source formats as info=1 names them: a 12-bit JPEG is a JPEG (its bit depth says the rest).
PUBLIC_FORMATS = {"jpeg12": "jpeg"}


def info_response(order: Order) -> JsonResponse:
    """The metadata of the order's source, with the order's validators."""
    if order.image is None:
        facts = media_metadata(order.source)
    else:
        facts = image_metadata(order.source, order.image)
    return JsonResponse(facts, headers={**order.headers, "X-Content-Type-Options": "nosniff"})


def image_metadata(source: Source, image: Image.Image) -> dict[str, object]:
    info = header_facts(source, image)
    return {
        "path": source.name,
        "kind": "image",
        "format": PUBLIC_FORMATS.get(info.format, info.format),
        "content_type": SOURCE_CONTENT_TYPES[info.format],
        "bytes": source.size,
        "width": info.width,
        "height": info.height,
        # the file's own orientation (HEIC's decoder applies it while parsing, so its header reads upright)
        "orientation": int(image.info.get("original_orientation") or info.orientation),
        "mode": info.mode,
        "bit_depth": bit_depth(image),
        "has_alpha": info.has_alpha,
        "colour_profile": profile_name(image.info.get("icc_profile")),
        "animated": info.frames > 1,
        "frames": info.frames,
    }


def media_metadata(source: Source) -> dict[str, object]:
    info = probe_media(source)
    facts: dict[str, object] = {
        "path": source.name,
        "kind": "video" if info.has_video else "audio",
        "container": info.container,
        "bytes": source.size,
        "duration": info.duration,
        "video_codec": info.video_codec,
        "audio_codec": info.audio_codec,
        "streams": [{"type": kind, "codec": codec} for kind, codec in info.streams],
    }
    if info.has_video:
        facts.update(width=info.width, height=info.height, rotation=info.rotation, fps=info.fps)
    return facts


def bit_depth(image: Image.Image) -> int:
    """Bits per sample from the header: what the plugin says, else the mode and raw mode it decodes with."""
    declared = getattr(image, "bits", None) or image.info.get("bit_depth")
    if declared:
        return int(declared)
    if image.format == "TIFF":
        bits = image.tag_v2.get(258)  # BitsPerSample
        if bits:
            return int(bits[0] if isinstance(bits, tuple) else bits)
    args = image.tile[0].args if image.tile else None
    raw_mode = args[0] if isinstance(args, tuple) and args else ""
    if image.mode.startswith("I;16") or ";16" in str(raw_mode):
        return 16
    return 1 if image.mode == "1" else 8


def profile_name(icc: bytes | None) -> str | None:
    """The embedded ICC profile's description (e.g. "Display P3"), "unreadable", or None without one."""
    if not icc:
        return None
    try:
        return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip() or "unnamed"
    except (ImageCms.PyCMSError, OSError, ValueError):
        return "unreadable"
