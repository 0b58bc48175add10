"""Defaults for the camera settings: the one table, read through ``streaming.conf.AppSettings``.

The names are whole (``CAMERAS``, ``CAMERAS_IDLE_TIMEOUT``, ...) and the prefix is
empty, because the main setting, ``CAMERAS``, has no suffix to share with the
others. ``mediasite/settings.py`` sets a name only when its environment variable is
present (cast to the type of its default here); code reads ``conf.CAMERAS_...`` when
it runs, never ``settings.CAMERAS_...``, so pytest-django's ``settings`` fixture and
environment variables for gunicorn both reach it.
"""

from __future__ import annotations

from typing import Any

from ..conf import AppSettings

DEFAULTS: dict[str, Any] = {
    # name=source pairs, e.g. "demo=emulated,lobby=v4l2:///dev/video0,loop=file:clips/loop.mp4"
    # (syntax in streaming/cameras/registry.py). Frames are relayed through REDIS_URL.
    "CAMERAS": "demo=emulated",
    # Seconds the producer keeps running after the last viewer in the deployment left.
    "CAMERAS_IDLE_TIMEOUT": 10.0,
    # Viewers of one camera across the deployment; past it a stream gets 503 + Retry-After.
    "CAMERAS_MAX_VIEWERS": 200,
    # Streams one worker process may hold at once. They cost no thread (the worker's event loop
    # holds them): one worker fed 3000 viewers of a 640x480 15 fps camera (2.1 GB/s) at full rate
    # with 38% of a core on a 2-core machine (docs/benchmarks.md, Cameras). 2000 keeps a full
    # worker well under its 4096 connections and its viewers' socket buffers under ~400 MB.
    "CAMERAS_WORKER_STREAMS": 2000,
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
