"""Defaults for every RENDER_* setting: the one table, read through ``streaming.conf.AppSettings``.

``mediasite/settings.py`` sets a RENDER_* name only when its environment variable is
present (cast to the type of its default here), with one exception: RENDER_QUEUE is
always a setting there, because ``RQ_QUEUES`` has to name the queue. Code reads
``conf.NAME`` when it runs, never at import, so ``override_settings`` and pytest-django's
``settings`` fixture reach it.
"""

from __future__ import annotations

from typing import Any

from streaming.conf import AppSettings

DEFAULTS: dict[str, Any] = {
    # The rq queue renders go to; RQ_QUEUES gives it the URL of REDIS_URL. "default" is the queue
    # a bare `manage.py rqworker` listens on; with another name, workers must be started with it.
    "QUEUE": "default",
    # Seconds a render may run before rq stops it.
    "JOB_TIMEOUT": 1800,
    # How often a failed render is tried again, and the seconds between tries (a worker
    # started with --with-scheduler runs the waiting ones).
    "RETRIES": 0,
    "RETRY_INTERVAL": 30,
    # A render whose worker has not said it is alive for this many seconds is abandoned (failed).
    "HEARTBEAT_TIMEOUT": 15,
    # Seconds between two looks of each worker for renders the queue lost (also once at start).
    "SWEEP_INTERVAL": 30,
    # Longest wait, in seconds, between two tries to reach Redis while it is away: workers and
    # their renders wait through an outage (0.5 s, 1 s, 2 s... up to this) instead of failing.
    "REDIS_RETRY_MAX": 5.0,
    # Seconds between comment lines on an idle event stream (keeps proxies from cutting it).
    "SSE_HEARTBEAT": 15.0,
    # Shortest gap, in seconds, between two progress writes to the cache.
    "PROGRESS_INTERVAL": 0.25,
    # The font file title cards are drawn with (MoviePy 2 needs a file, not a font name).
    "FONT": "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    # x264 speed/size trade-off for mp4 renders, and ffmpeg threads per render (0: ffmpeg decides).
    "X264_PRESET": "veryfast",
    "THREADS": 0,
    # Limits a recipe must stay inside.
    "MAX_DIMENSION": 3840,
    "MAX_FPS": 60,
    "MAX_SECONDS": 600,
    "MAX_CLIPS": 100,
    # A shared secret for API clients that have no staff session ("Authorization: Bearer <token>"); empty: off.
    "API_TOKEN": "",
}

conf = AppSettings("RENDER_", DEFAULTS)
