"""Live render progress: a proglog logger that turns MoviePy's bars into one throttled snapshot.

MoviePy reports two bars: ``chunk`` while it writes the audio track to a temp file, then
``frame_index`` while ffmpeg encodes the video. One overall percent needs stage weights
(the audio pass is short next to the video encode). The logger writes a snapshot (status,
percent, stage, frames/s, ETA, a sequence number) to the Django cache at most every
``RENDER_PROGRESS_INTERVAL`` seconds, which every process sees (the cache is Redis), and
reads the job's cancel flag at the same moments: raising from a proglog callback is how a
MoviePy write is aborted. Each crossing of a tenth is handed to ``on_checkpoint`` so the
database row gets a copy without a write per frame.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from proglog import ProgressBarLogger

from .conf import conf

# Share of the overall percent given to the audio pass when the render has audio.
AUDIO_WEIGHT = 0.1
# Progress stays below this until the file is in place; 100 means the output exists.
RUNNING_CEILING = 99.0
# How long a snapshot outlives the render in the cache (seconds).
SNAPSHOT_TTL = 24 * 3600


class RenderCanceled(Exception):
    """Raised inside MoviePy's write loop when the job's cancel flag is set."""


def progress_key(render_id: object) -> str:
    return f"render:{render_id}:progress"


def cancel_key(render_id: object) -> str:
    return f"render:{render_id}:cancel"


def heartbeat_key(render_id: object) -> str:
    return f"render:{render_id}:alive"


def next_seq(previous: int = 0) -> int:
    """Event sequence numbers: milliseconds since the epoch, strictly increasing per writer."""
    return max(previous + 1, int(time.time() * 1000))


def read_snapshot(render_id: object) -> dict[str, Any] | None:
    return cache.get(progress_key(render_id))


def write_snapshot(render_id: object, snapshot: dict[str, Any]) -> None:
    cache.set(progress_key(render_id), snapshot, timeout=SNAPSHOT_TTL)


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
            self.publish(now)

    def overall(self) -> float:
        audio_share = AUDIO_WEIGHT if self.has_audio else 0.0
        value = 100 * (audio_share * self._fractions["chunk"] + (1 - audio_share) * self._fractions["frame_index"])
        return min(RUNNING_CEILING, value)

    def publish(self, now: float | None = None) -> None:
        """Write the snapshot, copy each tenth to the row, and stop the render if it was canceled."""
        now = self.clock() if now is None else now
        self._last_write = now
        self.percent = max(self.percent, round(self.overall(), 1))
        elapsed = now - self.started
        if self.stage == "video" and self.fps and self._totals.get("frame_index"):
            done = self._fractions["frame_index"] * self._totals["frame_index"]
            self.eta_seconds = round(max(0.0, (self._totals["frame_index"] - done) / self.fps), 1)
        elif self.percent > 0:
            self.eta_seconds = round(elapsed * (100 - self.percent) / self.percent, 1)
        self.seq = next_seq(self.seq)
        write_snapshot(self.render_id, self.snapshot())
        self.writes += 1
        tenth = int(self.percent // 10)
        if tenth > self._last_tenth:
            self._last_tenth = tenth
            if self.on_checkpoint is not None:
                self.on_checkpoint(self.percent, self.stage)
        if cache.get(cancel_key(self.render_id)):
            raise RenderCanceled(f"canceled during {self.stage} at {self.percent:g}%")

    def snapshot(self) -> dict[str, Any]:
        return {
            "status": "processing",
            "progress": self.percent,
            "stage": self.stage,
            "fps": self.fps,
            "eta_seconds": self.eta_seconds,
            "error": "",
            "output": "",
            "seq": self.seq,
        }
