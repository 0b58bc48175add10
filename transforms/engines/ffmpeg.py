"""The ffmpeg engine: transcodes, time windows and frame grabs of video and audio.

A ``MediaJob`` is the finished request (output format, geometry plan, time
window, streams to keep); ``commands()`` turns it into one ffmpeg argv, a pure
function tested as a table. Every run reads a ``file:`` path (never a URL) with
only the ``file`` and ``pipe`` protocols and the allowed demuxers, never reads
stdin, and writes to ``pipe:1``:

- mp4: H.264 + AAC, fragmented (``empty_moov``, a fragment per keyframe, a
  keyframe every 2 s) so a browser plays it while it streams;
- webm: VP9 + Opus with libvpx's realtime settings;
- mp3, m4a: audio only (m4a fragmented too, since a pipe cannot be seeked back);
- gif: a palette made from the clip itself (palettegen + paletteuse in one graph);
- jpeg, png, webp: one frame, sought on the input (fast and exact).

ffmpeg applies the display rotation itself (autorotate) before our filters, so
the plan is computed on the upright, display-aspect picture.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from streaming.pipeline import Pipeline

from ..conf import conf
from ..formats import AUDIO_FORMATS, FRAME_FORMATS, VIDEO_FORMATS
from ..geometry import Plan
from ..probe import MediaInfo, input_options, input_url
from ..sources import Source
from .base import CommandEngine
from .segments import SegmentJob, seconds, segment_command
from .sprites import SheetJob, sheet_command

REVISION = 1

KEYFRAME_SECONDS = 2
FRAGMENTED = "frag_keyframe+empty_moov+default_base_moof"


@dataclass(frozen=True)
class MediaJob:
    """One ffmpeg run, fully decided: nothing in here is looked up again."""

    source: Source
    info: MediaInfo
    format: str  # mp4, webm, mp3, m4a, gif, or jpeg/png/webp for a frame
    plan: Plan | None  # None for audio-only outputs
    quality: int  # 1..100, mapped to each encoder's scale
    background: str = "ffffff"  # six hex digits, for fit=pad
    start: float | None = None  # input seek, seconds
    duration: float | None = None  # output bound, seconds
    frame: float | None = None  # a frame grab at this time
    fps: int | None = None
    audio: bool = True  # keep the audio track (when the format has one)

    @property
    def is_frame(self) -> bool:
        return self.frame is not None

    @property
    def keeps_video(self) -> bool:
        return self.format not in AUDIO_FORMATS and self.info.has_video

    @property
    def keeps_audio(self) -> bool:
        return self.format in ("mp4", "webm", *AUDIO_FORMATS) and self.audio and self.info.has_audio


class FfmpegEngine(CommandEngine):
    name = "ffmpeg"
    input_formats = frozenset()  # images go to the image engines
    output_formats = frozenset(VIDEO_FORMATS + AUDIO_FORMATS + FRAME_FORMATS)
    weight = 1

    def tools(self) -> list[str]:
        return [conf.FFMPEG, conf.FFPROBE]

    def version(self) -> str:
        return f"{super().version()}:{REVISION}"

    def weight_of(self, job: MediaJob | SegmentJob | SheetJob) -> int:  # type: ignore[override]
        """A frame grab is as light as a thumbnail; a transcode takes ``TRANSFORMS_VIDEO_WEIGHT`` slots."""
        return 1 if job.is_frame else conf.VIDEO_WEIGHT

    def render(self, job: MediaJob | SegmentJob | SheetJob, *, deadline: float,  # type: ignore[override]
               on_close: Callable[[], None]) -> Pipeline:
        # ffmpeg opens the file itself (-i file:...), so its stdin is /dev/null.
        return Pipeline(self.commands(job), stdin_path=None, deadline=deadline, on_close=on_close)

    def commands(self, job: MediaJob | SegmentJob | SheetJob) -> list[list[str]]:  # type: ignore[override]
        if isinstance(job, SegmentJob):  # an HLS segment (transforms.hls)
            return [segment_command(job, video_crf(job.quality, 18, 40), picture_filters(job, even_sides=True))]
        if isinstance(job, SheetJob):  # a storyboard sprite sheet (transforms.storyboard)
            return [sheet_command(job, picture_filters(job, even_sides=False, scaler="lanczos"), jpeg_qscale(job))]
        argv = [conf.FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", *input_options("file,pipe")]
        seek = job.frame if job.is_frame else job.start
        if seek:
            argv += ["-ss", seconds(seek)]
        argv += ["-i", input_url(job.source)]
        argv += ["-map_metadata", "-1", "-map_chapters", "-1", "-sn", "-dn"]
        if job.is_frame:
            return [argv + frame_options(job)]
        if job.keeps_video:
            argv += ["-map", "0:V:0"]
        if job.keeps_audio:
            argv += ["-map", "0:a:0"]
        if job.duration is not None:
            argv += ["-t", seconds(job.duration)]
        builder = {"mp4": mp4_options, "webm": webm_options, "gif": gif_options, "mp3": mp3_options,
                   "m4a": m4a_options}[job.format]  # fmt: skip
        return [argv + builder(job) + ["pipe:1"]]


def picture_filters(job: MediaJob | SegmentJob | SheetJob, *, even_sides: bool, scaler: str = "bicubic") -> list[str]:
    """crop (in stored pixels) -> scale to the plan -> square pixels -> pad -> fps."""
    plan = job.plan
    info = job.info
    filters: list[str] = []
    if plan is None:
        return filters
    if plan.crop is not None:
        left, top, right, bottom = plan.crop_in(info.stored_width, info.stored_height)
        width = max(2 if even_sides else 1, round(right - left))
        height = max(2 if even_sides else 1, round(bottom - top))
        filters.append(f"crop={width}:{height}:{int(left)}:{int(top)}")
    if plan.crop is not None or plan.resize != (info.stored_width, info.stored_height):
        filters.append(f"scale={plan.resize[0]}:{plan.resize[1]}:flags={scaler}")
    filters.append("setsar=1")
    if plan.canvas is not None:
        x = (plan.canvas[0] - plan.resize[0]) // 2
        y = (plan.canvas[1] - plan.resize[1]) // 2
        filters.append(f"pad={plan.canvas[0]}:{plan.canvas[1]}:{x}:{y}:color=0x{job.background}")
    if job.fps is not None:
        filters.append(f"fps={job.fps}")
    return filters


def keyframes() -> list[str]:
    """A keyframe every few seconds, so fragments (and seek points) come often."""
    return ["-force_key_frames", f"expr:gte(t,n_forced*{KEYFRAME_SECONDS})"]


def video_crf(quality: int, best: int, worst: int) -> int:
    """quality 100 -> ``best`` crf, 1 -> ``worst``, linear in between."""
    return round(best + (100 - quality) * (worst - best) / 99)


def audio_bitrate(quality: int, low: int, high: int) -> str:
    return f"{round(low + quality * (high - low) / 100)}k"


def stream_options(job: MediaJob, video: list[str], audio: list[str]) -> list[str]:
    """The picture (filters, ``video`` encoder options, keyframes) and the sound, or ``-vn``/``-an``."""
    options: list[str] = []
    if job.keeps_video:
        options += ["-vf", ",".join([*picture_filters(job, even_sides=True), "format=yuv420p"]), *video, *keyframes()]
    else:
        options.append("-vn")
    return options + (audio if job.keeps_audio else ["-an"])


def mp4_options(job: MediaJob) -> list[str]:
    # No B-frames: the first picture then has pts 0 like the audio (a fragmented MP4 has no
    # edit list to hide the B-frame delay), and the encoder adds no reordering latency.
    video = ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(video_crf(job.quality, 18, 40)), "-bf", "0"]
    audio = ["-c:a", "aac", "-b:a", audio_bitrate(job.quality, 64, 192), "-ac", "2"]
    return stream_options(job, video, audio) + ["-movflags", FRAGMENTED, "-f", "mp4"]


def webm_options(job: MediaJob) -> list[str]:
    video = ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1",
             "-crf", str(video_crf(job.quality, 20, 50)), "-b:v", "0"]  # fmt: skip
    audio = ["-c:a", "libopus", "-b:a", audio_bitrate(job.quality, 48, 160), "-ac", "2"]
    return stream_options(job, video, audio) + ["-f", "webm"]


def gif_options(job: MediaJob) -> list[str]:
    filters = picture_filters(job, even_sides=False, scaler="lanczos")
    if job.fps is None:
        filters.append("fps=10")
    graph = ",".join(filters) + ",split[a][b];[a]palettegen=stats_mode=diff[p];[b][p]paletteuse=dither=bayer"
    return ["-vf", graph, "-an", "-loop", "0", "-f", "gif"]


def mp3_options(job: MediaJob) -> list[str]:
    # Constant bit rate: a pipe cannot go back to write a VBR header, and without one
    # players guess a VBR file's length from its first frames (wrongly).
    return ["-vn", "-c:a", "libmp3lame", "-b:a", audio_bitrate(job.quality, 96, 256), "-ac", "2", "-f", "mp3"]


def m4a_options(job: MediaJob) -> list[str]:
    # Audio has no video keyframes to cut fragments at: cut one every second instead.
    return ["-vn", "-c:a", "aac", "-b:a", audio_bitrate(job.quality, 64, 192), "-ac", "2",
            "-movflags", "empty_moov+default_base_moof", "-frag_duration", "1000000", "-f", "ipod"]  # fmt: skip


def jpeg_qscale(job: MediaJob | SheetJob) -> int:
    """quality (1..100) on mjpeg's scale: 2 best .. 31 worst."""
    return round(2 + (100 - job.quality) * 0.25)


def frame_options(job: MediaJob) -> list[str]:
    filters = picture_filters(job, even_sides=False, scaler="lanczos")
    options = ["-map", "0:V:0", "-frames:v", "1", "-an"]
    if job.format == "jpeg":
        options += ["-vf", ",".join([*filters, "format=yuvj420p"]), "-c:v", "mjpeg", "-q:v", str(jpeg_qscale(job))]
    elif job.format == "png":
        options += ["-vf", ",".join([*filters, "format=rgb24"]), "-c:v", "png"]
    else:
        options += ["-vf", ",".join(filters), "-c:v", "libwebp", "-quality", str(job.quality)]
    return options + ["-f", "image2pipe", "pipe:1"]
