"""Defaults for every TRANSFORMS_* setting: the one table, read through ``streaming.conf.AppSettings``.

``mediasite/settings.py`` sets a TRANSFORMS_* name only when its environment
variable is present (cast to the type of its default here); everything else falls
back to this table. Code reads ``conf.NAME`` when it runs, never at import.
"""

from __future__ import annotations

import os
from typing import Any

from streaming.conf import AppSettings

DEFAULTS: dict[str, Any] = {
    # Where finished results are kept (see transforms/cache.py); mediasite/settings.py
    # defaults it to var/cache under the project.
    "CACHE_DIR": None,
    # Keep results in the cache at all.
    "CACHE": True,
    # Size bound of the result cache in bytes; least recently used entries go first.
    "CACHE_MAX_BYTES": 1 << 30,
    # Seconds a request waits for an identical render in progress elsewhere before rendering its own.
    "CACHE_WAIT": 60,
    # Video/audio transcodes: identical requests follow the first one's output as it
    # grows; one that sees no output from it for this long streams from its own ffmpeg.
    "TRANSCODE_CACHE_WAIT": 2,
    # "off": URLs need no signature; "required": every transform URL must carry ?sig=.
    "SIGNING": "off",
    # Largest output width or height a request may ask for.
    "MAX_DIMENSION": 4096,
    # Largest source, in pixels, checked from the header before any decoding.
    "MAX_PIXELS": 50_000_000,
    # Largest source file accepted for a transform, in bytes.
    "MAX_SOURCE_BYTES": 200 * 1024 * 1024,
    # Work slots per worker process (a thumbnail takes one); 0 means 2 x CPU cores.
    "CONCURRENCY": 0,
    # Seconds a request may wait for a free work slot before it is refused with 503.
    "SLOT_WAIT": 3,
    # Seconds a transform may run before it is killed.
    "DEADLINE": 30,
    # Cache-Control sent with transformed results and originals.
    "CACHE_CONTROL": "public, max-age=86400",
    # Engine used when the request names none.
    "DEFAULT_ENGINE": "pillow",
    # Default output quality (1..100).
    "DEFAULT_QUALITY": 85,
    # --- image operations (issue 16) ---
    # Lowest quality max_bytes may go down to before it answers 422.
    "MIN_QUALITY": 10,
    # trim=1: how far (0..255, any channel) a pixel may differ from the top-left one and still be border.
    "TRIM_TOLERANCE": 16,
    # Tool paths. On these machines /usr/local/bin/convert is a stand-in: use /usr/bin/convert.
    "CONVERT": "/usr/bin/convert",
    "DJPEG": "djpeg",
    "CJPEG": "cjpeg",
    "FFMPEG": "ffmpeg",
    "FFPROBE": "ffprobe",
    # --- engines: convert (ImageMagick) and cjpeg (libjpeg-turbo + netpbm) ---
    # Folder of the netpbm tools the cjpeg engine runs (pamflip, pamcut, pamscale,
    # pnmpad); empty means "find them on PATH".
    "NETPBM_DIR": "",
    # --- video and audio (issue 4) ---
    # Longest source accepted, in seconds, read by ffprobe before any work starts.
    "MAX_SOURCE_DURATION": 4 * 3600,
    # Largest video frame accepted, in pixels (8K UHD fits).
    "MAX_VIDEO_PIXELS": 8192 * 4320,
    # Longest result a transcode may make, in seconds; longer asks must name start= and duration=.
    "MAX_OUTPUT_DURATION": 600,
    # Longest animated GIF, in seconds (the palette pass holds every frame in memory).
    "MAX_GIF_DURATION": 30,
    # Seconds a whole transcode may take, streaming included, before it is killed.
    "VIDEO_DEADLINE": 900,
    # Seconds ffprobe may take to read a source's header.
    "PROBE_TIMEOUT": 10,
    # Work slots a transcode takes (a thumbnail or a frame grab takes one).
    "VIDEO_WEIGHT": 2,
    # The only demuxers ffmpeg and ffprobe may use: no playlists (hls, concat) that could
    # name other files, no image pipes (images go to the image engines).
    "VIDEO_DEMUXERS": "mov,mp4,matroska,webm,avi,mpegts,mpeg,ogg,mp3,wav,flac,aac,asf,flv,aiff,caf,w64,wv,mxf",
}


class TransformsSettings(AppSettings):
    """``conf.MAX_PIXELS`` -> settings.TRANSFORMS_MAX_PIXELS, else the default above."""

    @property
    def concurrency(self) -> int:
        configured = int(self.CONCURRENCY)
        return configured if configured > 0 else 2 * (os.cpu_count() or 1)


conf = TransformsSettings("TRANSFORMS_", DEFAULTS)
