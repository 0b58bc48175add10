"""Defaults for the camera settings: the one table, read through ``streaming.conf.AppSettings``.

The names are whole (``CAMERAS``, ``CAMERAS_IDLE_TIMEOUT``, ...) and the prefix is
empty, because the main setting, ``CAMERAS``, has no suffix to share with the
others. ``mediasite/settings.py`` sets a name only when its environment variable is
present (cast to the type of its default here); code reads ``conf.CAMERAS_...`` when
it runs, never ``settings.CAMERAS_...``, so pytest-django's ``settings`` fixture and
environment variables for gunicorn both reach it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..conf import AppSettings, cast

DEFAULT_THREADS = 256  # mediasite/gunicorn.conf.py's default for GUNICORN_THREADS


def worker_streams(environ: Mapping[str, str]) -> int:
    """Streams one worker may hold: its gthread pool minus a reserve for ordinary requests.

    Each stream holds a thread, and gthread queues requests beyond its threads behind
    the streams, so 32 threads of the default 256 (half of a small pool) stay free for
    pages, thumbnails and transcodes; see mediasite/gunicorn.conf.py.
    """
    raw = environ.get("GUNICORN_THREADS")
    threads = cast("GUNICORN_THREADS", raw, DEFAULT_THREADS) if raw else DEFAULT_THREADS
    reserve = max(threads // 8, min(32, threads // 2))
    return max(1, threads - reserve)


DEFAULTS: dict[str, Any] = {
    # name=source pairs, e.g. "demo=emulated,lobby=v4l2:///dev/video0,loop=file:clips/loop.mp4"
    # (syntax in streaming/cameras/registry.py). Frames are relayed through REDIS_URL.
    "CAMERAS": "demo=emulated",
    # Seconds the producer keeps running after the last viewer in the deployment left.
    "CAMERAS_IDLE_TIMEOUT": 10.0,
    # Viewers of one camera across the deployment; past it a stream gets 503 + Retry-After.
    "CAMERAS_MAX_VIEWERS": 200,
    # Streams one worker process may hold at once. Derived from the thread pool this
    # process is started with (the environment gunicorn runs under), hence computed here.
    "CAMERAS_WORKER_STREAMS": worker_streams(os.environ),
    # Seconds a new viewer waits for the first frame before it gets a 503.
    "CAMERAS_FIRST_FRAME_TIMEOUT": 10.0,
    # A source that sends nothing for this long has failed (and is restarted).
    "CAMERAS_STALL_TIMEOUT": 10.0,
    # A viewer whose socket accepts nothing for this long is dropped (0: never).
    "CAMERAS_SEND_TIMEOUT": 30,
    # Seconds before a failed source is retried, doubling up to the maximum.
    "CAMERAS_RESTART_BACKOFF": 1.0,
    "CAMERAS_RESTART_BACKOFF_MAX": 30.0,
}

conf = AppSettings("", DEFAULTS)
