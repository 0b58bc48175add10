"""ffmpeg runs that make one storyboard sprite sheet: a JPEG grid of small frames at fixed intervals.

One run per sheet reads the stretch of the video its tiles cover, keeps one frame
per interval (``fps``), scales each to the tile and lays them out (``tile``). On a
large source only keyframes are decoded (``-skip_frame nokey``): a tile then shows
the keyframe nearest its time, a few seconds off at worst, for a small fraction of
the cost of decoding every frame of minutes of video; small sources decode all.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..conf import conf
from ..geometry import Plan
from ..probe import MediaInfo, input_options, input_url
from ..sources import Source
from .segments import seconds


@dataclass(frozen=True)
class SheetJob:
    source: Source
    info: MediaInfo
    plan: Plan  # one tile
    start: float  # the time of the first tile
    interval: float
    columns: int
    rows: int
    keyframes_only: bool
    quality: int = 75
    background: str = "000000"  # for the shared picture filters (never padded here)
    fps: int | None = None
    format = "jpeg"
    is_frame = False  # it reads a long stretch of video: it weighs as a transcode


def sheet_command(job: SheetJob, picture: list[str], qscale: int) -> list[str]:
    """The argv; ``picture`` (the tile's scaling filters) and ``qscale`` come from the ffmpeg engine."""
    span = job.columns * job.rows * job.interval
    argv = [conf.FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", *input_options("file,pipe")]
    if job.keyframes_only:
        argv += ["-skip_frame", "nokey"]
    filters = [f"fps=fps=1/{seconds(job.interval)}:start_time=0", *picture, f"tile={job.columns}x{job.rows}",
               "format=yuvj420p"]
    return argv + [
        "-noaccurate_seek", "-ss", seconds(job.start), "-t", seconds(span), "-i", input_url(job.source),
        "-map", "0:V:0", "-an", "-sn", "-dn", "-map_metadata", "-1", "-vf", ",".join(filters),
        "-frames:v", "1", "-c:v", "mjpeg", "-q:v", str(qscale), "-f", "image2pipe", "pipe:1",
    ]  # fmt: skip
