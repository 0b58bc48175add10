"""ffmpeg runs that make one HLS segment, or its initialization section, cut so that segments join.

Every segment ``[start, end)`` is made by its own ffmpeg run that starts at the segment's
time, so a player that seeks to the middle of a film costs one segment, not the film.
What makes separately made segments play as one stream:

- Timestamps are the source's own (``-copyts -start_at_zero``, no shifting to zero), and
  each fragment says where it is (``frag_discont``: tfdt is the packets' decode time), so
  they run on across boundaries.
- Video is read from ``start`` and trimmed at ``end``: every frame falls in exactly one
  segment, and every segment opens with its own IDR frame at (within a frame of) its
  time. Where ``start`` is a source keyframe ffmpeg seeks straight to it and decodes
  nothing it drops (``-noaccurate_seek``, the trim only guards the edge); elsewhere it
  decodes from the keyframe before and drops what comes earlier.
- Audio is read a second time, from two AAC frames before its start to three after its
  end (``audio_start``/``audio_end``: the video cuts moved to the nearest boundary of
  1024-sample frames at 48 kHz), and resampled to 48 kHz; ffmpeg's accurate seek starts
  it on the sample, so every run's packets lie on one grid, and a bitstream filter
  keeps exactly the packets timed inside the segment. (An audio
  track that starts after the video is off that grid in its first segment: its first
  join may have up to half a frame, 11 ms, of overlap or gap.) The packets on
  each side of a boundary were both encoded from the audio around it, so the decoder's
  overlap-add joins them as if one run had made them: no gap, overlap or click.
- The mp4 muxer sits inside the segment muxer, which writes the header (ftyp + moov,
  written before any packet because of ``empty_moov``, so identical for every run of a
  rendition) to one place and the media (moof + mdat) to another: a segment sends the
  media to stdout and the header to /dev/null; the init request does the opposite.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..conf import conf
from ..geometry import Plan
from ..probe import MediaInfo, input_options, input_url
from ..sources import Source

AUDIO_RATE = 48000
AAC_FRAME = 1024
PRE_ROLL = 2 * AAC_FRAME / AUDIO_RATE
POST_ROLL = 3 * AAC_FRAME / AUDIO_RATE
# Half a millisecond: keyframe times come rounded to the microsecond and frames are at least
# 8 ms apart, so a cut this far before a keyframe puts it, and only it, on the right side.
SLACK = 0.0005
FRAGMENT_MICROSECONDS = 1_000_000  # a fragment a second: the first bytes leave before the segment is done
MOVFLAGS = "+frag_keyframe+empty_moov+default_base_moof+frag_discont+skip_trailer"


@dataclass(frozen=True)
class SegmentJob:
    """One segment of one rendition, fully decided by ``transforms.hls``."""

    source: Source
    info: MediaInfo
    plan: Plan | None  # the picture; None for an audio rendition
    video_kbps: int
    level: int  # H.264 level x 10
    audio_kbps: int  # 0: no audio track
    start: float  # the video's stretch [start, end)
    end: float
    keyframe_start: bool  # start is a source keyframe: ffmpeg seeks to it and decodes nothing before
    keyframe_end: bool
    audio_start: float  # the audio's stretch, on the grid of AAC frames
    audio_end: float
    last: bool = False  # the last segment keeps everything to the end of the source
    init: bool = False  # the initialization section instead of the media
    quality: int = 85
    background: str = "ffffff"  # for the shared picture filters (never padded here)
    fps: int | None = None

    is_frame = False  # a transcode, as far as work slots go

    @property
    def format(self) -> str:
        return "mp4" if self.plan is not None else "m4a"


def segment_command(job: SegmentJob, video_crf: int, picture: list[str]) -> list[str]:
    """The argv; ``video_crf`` and ``picture`` (the scaling filters) come from the ffmpeg engine."""
    argv = [conf.FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-copyts", "-start_at_zero"]
    maps: list[str] = []
    if job.plan is not None:
        if job.keyframe_start:  # land on the keyframe itself and keep it: nothing to decode and drop
            argv += ["-noaccurate_seek"]
        argv += read_from(job, job.start + (SLACK if job.keyframe_start else 0), job.end - job.start + 1)
        maps += ["-map", "0:V:0"]
    if job.audio_kbps:
        first = max(0.0, job.audio_start - PRE_ROLL)
        argv += read_from(job, first, job.audio_end + POST_ROLL - first)
        maps += ["-map", f"{len(maps) // 2}:a:0"]
    argv += [*maps, "-map_metadata", "-1", "-map_chapters", "-1", "-sn", "-dn"]
    if job.plan is not None:
        argv += video_options(job, video_crf, picture)
    if job.audio_kbps:
        argv += audio_options(job)
    header, media = ("/dev/null", "pipe:1") if not job.init else ("pipe:1", "/dev/null")
    if job.init:  # the header is written before the first packet: one frame is plenty
        argv += ["-frames:v", "1", "-frames:a", "1"]
    return argv + [
        "-avoid_negative_ts", "disabled", "-f", "segment", "-strftime", "1", "-segment_time", "1000000",
        "-segment_format", "mp4", "-segment_format_options",
        f"movflags={MOVFLAGS}:avoid_negative_ts=disabled:frag_duration={FRAGMENT_MICROSECONDS}",
        "-segment_header_filename", header, media,
    ]  # fmt: skip


def read_from(job: SegmentJob, start: float, length: float) -> list[str]:
    return [*input_options("file,pipe"), "-ss", seconds(start), "-t", seconds(length), "-i", input_url(job.source)]


def video_options(job: SegmentJob, crf: int, picture: list[str]) -> list[str]:
    """Capped CRF (the cap is the BANDWIDTH the playlist announces), High profile at the announced
    level, no B-frames (the first frame's time is then its decode time, as in the progressive mp4)."""
    start = max(0.0, job.start - SLACK) if job.keyframe_start else job.start
    end = "" if job.last else f":end={seconds(job.end - SLACK if job.keyframe_end else job.end)}"
    filters = [f"trim=start={seconds(start)}{end}", *picture, "format=yuv420p"]
    return ["-vf", ",".join(filters), "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf),
            "-maxrate", f"{job.video_kbps}k", "-bufsize", f"{2 * job.video_kbps}k", "-bf", "0",
            "-profile:v", "high", "-level:v", f"{job.level / 10:.1f}"]  # fmt: skip


def audio_options(job: SegmentJob) -> list[str]:
    """AAC at 48 kHz on the global frame grid, keeping the packets timed in [start, end)."""
    half = AAC_FRAME // 2  # packets sit on the grid; half a frame of slack absorbs rounding
    keep = f"lt(pts\\,{round(job.audio_start * AUDIO_RATE) - half})"
    if not job.last:
        keep += f"+gte(pts\\,{round(job.audio_end * AUDIO_RATE) - half})"
    return ["-c:a", "aac", "-b:a", f"{job.audio_kbps}k", "-ar", str(AUDIO_RATE), "-ac", "2",
            "-bsf:a", f"noise=drop={keep}"]  # fmt: skip


def seconds(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"
