"""The in-process engine for small text results: HLS playlists and storyboard WebVTT tracks.

Their bytes are decided while the request is planned (from ffprobe's report), so
this engine only hands them over; it exists so that such a result goes the way of
every transform (order, ETag, signature, plan, response) rather than a side door.
It takes no work slot (nothing runs) and its results are not kept in the result
cache (making them costs less than reading a file).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..sources import Source
from .base import Engine

REVISION = 1


@dataclass(frozen=True)
class TextJob:
    source: Source
    format: str  # "hls" (a playlist) or "vtt" (a storyboard track)
    body: bytes


class TextEngine(Engine):
    name = "text"

    def check(self) -> str | None:
        return None

    def version(self) -> str:
        return f"text:{REVISION}"

    def weight_of(self, job: object) -> int:
        return 0

    def render(self, job: TextJob, *, deadline: float, on_close: Callable[[], None]) -> bytes:  # type: ignore[override]
        on_close()
        return job.body


TEXT = TextEngine()
