"""Every format name the service knows: what a request may ask for, what each is, its content type.

Images come in the image formats; video and audio sources become the media formats
(transcodes), the audio formats, or one frame in a frame format. ``format=auto``
picks from the client's Accept header (``negotiate``). File extensions say which
kind of source a file is for the pages (``media_kind``); the media views decide by
the file's header, not its name.
"""

from __future__ import annotations

import os

IMAGE_FORMATS = ("jpeg", "png", "webp", "avif", "gif")
# Image sources read but never written: a result from one is JPEG (PNG when it has alpha) unless asked.
READ_ONLY_FORMATS = ("tiff", "heic", "jpeg12")
# How a message names a source format that is not a format parameter's value.
SOURCE_NAMES = {"tiff": "TIFF", "heic": "HEIC/HEIF", "jpeg12": "12-bit JPEG"}
# The lossy outputs whose quality max_bytes may lower.
LOSSY_FORMATS = ("jpeg", "webp", "avif")
# Outputs only ffmpeg makes, from video and audio sources (gif is also an image format).
MEDIA_FORMATS = ("mp4", "webm", "mp3", "m4a", "hls")
AUDIO_FORMATS = ("mp3", "m4a")
VIDEO_FORMATS = ("mp4", "webm", "gif")
FRAME_FORMATS = ("jpeg", "png", "webp")
FORMAT_ALIASES = {"jpg": "jpeg"}
# What the format parameter accepts.
REQUESTABLE = IMAGE_FORMATS + MEDIA_FORMATS + ("auto",)

CONTENT_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "avif": "image/avif",
    "gif": "image/gif",
    "mp4": "video/mp4",
    "webm": "video/webm",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "hls": "application/vnd.apple.mpegurl",  # HLS playlists (transforms.hls)
    "vtt": "text/vtt; charset=utf-8",  # storyboard thumbnail tracks (transforms.storyboard)
}
# Content types of the image sources that are never outputs (``info=1``).
SOURCE_CONTENT_TYPES = {**CONTENT_TYPES, "tiff": "image/tiff", "heic": "image/heic", "jpeg12": "image/jpeg"}

# Tried in this order for format=auto; JPEG is what every client takes.
AUTO_PREFERENCE = ("avif", "webp")
# Source formats a browser shows as they are (PNG and GIF keep transparency): format=auto
# without a preference keeps them; anything else becomes JPEG.
KEPT_BY_AUTO = ("jpeg", "png", "gif")

EXTENSIONS = {
    "image": frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".avif", ".tif", ".tiff", ".heic", ".heif"}),
    "video": frozenset({".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".mpg", ".mpeg", ".ts", ".ogv"}),
    "audio": frozenset({".mp3", ".m4a", ".aac", ".wav", ".flac", ".ogg", ".opus"}),
}


def negotiate(accept: str) -> str | None:
    """The modern format the client lists in Accept for ``format=auto``, if any.

    None means "no preference". It only needs the header, so the ETag can be
    computed before any decoding.
    """
    offered = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    for fmt in AUTO_PREFERENCE:
        if CONTENT_TYPES[fmt] in offered:
            return fmt
    return None


def image_output_format(asked: str | None, negotiated: str | None, source_format: str, has_alpha: bool = False) -> str:
    """The format an image result is written in: as asked, negotiated for auto, else the source's.

    A source in a format no engine writes (TIFF, HEIC, 12-bit JPEG) becomes JPEG, or PNG
    when it has alpha, so that what comes back is something a browser shows.
    """
    fallback = "png" if has_alpha else "jpeg"
    if asked == "auto":
        return negotiated or (source_format if source_format in KEPT_BY_AUTO else fallback)
    if asked:
        return asked
    return fallback if source_format in READ_ONLY_FORMATS else source_format


def media_kind(name: str) -> str | None:
    """What the pages show a file as, from its extension: image, video, audio, or None."""
    extension = os.path.splitext(name)[1].lower()
    return next((kind for kind, known in EXTENSIONS.items() if extension in known), None)
