"""Live render progress in the cache: the one writer of a render's snapshot and of its event ids.

The row (``models.RenderJob``) is the source of truth; the cache key ``render:<id>:progress``
holds what a reader should see right now, in every process (the cache is Redis). Only
``publish`` writes it: the proglog logger below in the worker, and every row transition
(``transitions.py``) in the worker and the web processes alike. ``publish`` also numbers
the snapshots: milliseconds since the epoch, but always above the number it replaces, so
the Server-Sent Events ids (``id:``, resumed with ``Last-Event-ID``) rise strictly whoever
wrote. A reader that finds no snapshot (Redis flushed or down) numbers the row by the
time of its last change (``live_fields``), on the same clock.

MoviePy reports two bars: ``chunk`` while it writes the audio track to a temp file, then
``frame_index`` while ffmpeg encodes the video. One overall percent needs stage weights
(the audio pass is short next to the video encode). The logger publishes (status,
percent, stage, frames/s, ETA) at most every ``RENDER_PROGRESS_INTERVAL`` seconds and
reads the job's cancel flag at the same moments: raising from a proglog callback is how a
MoviePy write is aborted. Each crossing of a tenth is handed to ``on_checkpoint`` so the
database row gets a copy without a write per frame.

Redis going away never fails a render: a progress write or cancel read that fails is
dropped, and the logger leaves Redis alone for a while (0.5 s, doubling up to
``RENDER_REDIS_RETRY_MAX``) so a Redis that hangs does not slow the encode; the next write
after that carries the newest state. The tenths still reach the row, which needs no Redis.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.core.cache import cache
from proglog import ProgressBarLogger

from .conf import conf
from .errors import REDIS_ERRORS
from .models import RenderStatus

# Share of the overall percent given to the audio pass when the render has audio.
AUDIO_WEIGHT = 0.1
# Progress stays below this until the file is in place; 100 means the output exists.
RUNNING_CEILING = 99.0
# How long a snapshot outlives the render in the cache (seconds).
SNAPSHOT_TTL = 24 * 3600
# After a failed progress write, seconds before the logger tries Redis again (then doubled).
REDIS_FIRST_WAIT = 0.5
# What the logger knows better than the row while a render runs.
LIVE_FIELDS = ("progress", "stage", "fps", "eta_seconds")


class RenderCanceled(Exception):
    """Raised inside MoviePy's write loop when the job's cancel flag is set."""


def progress_key(render_id: object) -> str:
    return f"render:{render_id}:progress"


def cancel_key(render_id: object) -> str:
    return f"render:{render_id}:cancel"


def heartbeat_key(render_id: object) -> str:
    return f"render:{render_id}:alive"


def sequence_at(moment: datetime) -> int:
    """The clock of the event ids: milliseconds since the epoch."""
    return int(moment.timestamp() * 1000)


def read_snapshot(render_id: object) -> dict[str, Any] | None:
    return cache.get(progress_key(render_id))


def read_snapshot_quietly(render_id: object) -> dict[str, Any] | None:
    """The snapshot, or None when Redis cannot be reached (readers fall back to the row)."""
    try:
        return read_snapshot(render_id)
    except REDIS_ERRORS:
        return None


def publish(render_id: object, fields: dict[str, Any]) -> int:
    """Make ``fields`` the render's live snapshot under the next event id, and return that id.

    The id is the current millisecond, or one more than the snapshot it replaces when that
    is later (several writes in one millisecond, or a writer whose clock is behind).
    Redis errors reach the caller: the logger drops the write and tries again later, a
    transition shrugs them off (the row already holds the change).
    """
    previous = read_snapshot(render_id) or {}
    seq = max(int(previous.get("seq", 0)) + 1, int(time.time() * 1000))
    cache.set(progress_key(render_id), {**fields, "seq": seq}, timeout=SNAPSHOT_TTL)
    return seq


def live_fields(row: dict[str, Any], changed: datetime, snapshot: dict[str, Any] | None) -> dict[str, Any]:
    """The row's fields as readers see them, with the event id they go out under.

    A snapshot that tells the row's state lends its id (and, while the render runs, the
    live figures; the percent never goes below the row's copy). One that tells another
    state is stale (its transition was not published): the row's fields go out under an id
    above it. Without a snapshot the id is the time of the row's last change.
    """
    fields = {**row, "seq": sequence_at(changed)}
    if not snapshot:
        return fields
    seq = int(snapshot.get("seq", 0))
    if snapshot.get("status") != row["status"]:
        fields["seq"] = max(fields["seq"], seq + 1)
        return fields
    fields["seq"] = max(fields["seq"], seq)
    if row["status"] == RenderStatus.PROCESSING:
        fields.update({key: snapshot.get(key) for key in LIVE_FIELDS})
        fields["progress"] = max(fields["progress"] or 0.0, row["progress"])
    return fields


class RenderProgress(ProgressBarLogger):
    """The proglog logger a render job passes to ``write_videofile``."""

    def __init__(
        self,
        render_id: object,
        on_checkpoint: Callable[[float, str], None] | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # logged_bars=None: the default "all" keeps one log line per update for the whole render.
        super().__init__(logged_bars=None)
        self.render_id = render_id
        self.on_checkpoint = on_checkpoint
        self.interval = float(conf.PROGRESS_INTERVAL if interval is None else interval)
        self.clock = clock
        self.started = clock()
        self.has_audio = False
        self.stage = "starting"
        self.percent = 0.0
        self.fps: float | None = None
        self.eta_seconds: float | None = None
        self.seq = 0
        self.writes = 0
        self._totals: dict[str, int] = {}
        self._fractions = {"chunk": 0.0, "frame_index": 0.0}
        self._video_started: float | None = None
        self._last_write = float("-inf")
        self._last_tenth = 0
        self.dropped = 0
        self._redis_back_at = float("-inf")
        self._redis_wait = REDIS_FIRST_WAIT

    def set_plan(self, plan: Any) -> None:
        """Called once the timeline is composed: whether an audio pass will come first."""
        self.has_audio = bool(plan.has_audio)

    def bars_callback(self, bar: str, attr: str, value: Any, old_value: Any = None) -> None:
        if bar not in self._fractions:
            return
        if attr == "total":
            self._totals[bar] = int(value or 0)
            return
        if attr != "index":
            return
        total = self._totals.get(bar) or 0
        self._fractions[bar] = min(1.0, (int(value) + 1) / total) if total else 0.0
        stage = "audio" if bar == "chunk" else "video"
        now = self.clock()
        if stage == "video" and self._video_started is None:
            self._video_started = now
        if stage == "video" and self._video_started is not None and now > self._video_started:
            self.fps = round((int(value) + 1) / (now - self._video_started), 1)
        changed_stage = stage != self.stage
        self.stage = stage
        finished_bar = bool(total) and int(value) + 1 >= total
        if changed_stage or finished_bar or now - self._last_write >= self.interval:
            self.report(now)

    def overall(self) -> float:
        audio_share = AUDIO_WEIGHT if self.has_audio else 0.0
        value = 100 * (audio_share * self._fractions["chunk"] + (1 - audio_share) * self._fractions["frame_index"])
        return min(RUNNING_CEILING, value)

    def report(self, now: float | None = None) -> None:
        """Publish the snapshot, copy each tenth to the row, and stop the render if it was canceled."""
        now = self.clock() if now is None else now
        self._last_write = now
        self.percent = max(self.percent, round(self.overall(), 1))
        elapsed = now - self.started
        if self.stage == "video" and self.fps and self._totals.get("frame_index"):
            done = self._fractions["frame_index"] * self._totals["frame_index"]
            self.eta_seconds = round(max(0.0, (self._totals["frame_index"] - done) / self.fps), 1)
        elif self.percent > 0:
            self.eta_seconds = round(elapsed * (100 - self.percent) / self.percent, 1)
        tenth = int(self.percent // 10)
        if tenth > self._last_tenth:
            self._last_tenth = tenth
            if self.on_checkpoint is not None:
                self.on_checkpoint(self.percent, self.stage)
        if now < self._redis_back_at:
            self.dropped += 1
            return
        try:
            self.seq = publish(self.render_id, self.fields())
            canceled = cache.get(cancel_key(self.render_id))
        except REDIS_ERRORS:
            self.dropped += 1
            self._redis_back_at = now + self._redis_wait
            self._redis_wait = min(self._redis_wait * 2, float(conf.REDIS_RETRY_MAX))
            return
        self._redis_wait = REDIS_FIRST_WAIT
        self.writes += 1
        if canceled:
            raise RenderCanceled(f"canceled during {self.stage} at {self.percent:g}%")

    def fields(self) -> dict[str, Any]:
        """What the logger publishes: the status fields of a running render, as the row has them."""
        return {
            "status": "processing",
            "progress": self.percent,
            "stage": self.stage,
            "fps": self.fps,
            "eta_seconds": self.eta_seconds,
            "error": "",
            "output": "",
        }
