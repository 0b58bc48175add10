"""Output formats: their content types and the choice made for ``format=auto``."""

from __future__ import annotations

CONTENT_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "avif": "image/avif",
    "gif": "image/gif",
}

# Tried in this order for format=auto; JPEG is what every client takes.
AUTO_PREFERENCE = ("avif", "webp")


def negotiate(accept: str) -> str | None:
    """The modern format the client lists in Accept for ``format=auto``, if any.

    None means "no preference": the view then keeps the source's format when every
    browser shows it (PNG/GIF keep transparency) and falls back to JPEG.
    It only needs the header, so the ETag can be computed before any decoding.
    """
    offered = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    for fmt in AUTO_PREFERENCE:
        if CONTENT_TYPES[fmt] in offered:
            return fmt
    return None

# What ffmpeg makes from video and audio sources (frames use the image types above).
MEDIA_CONTENT_TYPES = {
    "mp4": "video/mp4",
    "webm": "video/webm",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "gif": "image/gif",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
}
