"""Read what a video or audio source is with ffprobe, before any work starts.

``probe_media`` runs ffprobe once, bounded in time, restricted to local files and
to the demuxers in ``TRANSFORMS_VIDEO_DEMUXERS`` (so a playlist in the media
folder can never make ffmpeg open another file), and returns a ``MediaInfo``:
duration, the first video and audio streams, rotation and the display size.
Limits (duration, pixels) are checked here, so a request is refused before
ffmpeg starts. Every failure is a ``TransformError`` with a 4xx status.
"""

from __future__ import annotations

import functools
import json
import math
import mimetypes
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from .conf import conf
from .errors import CorruptSource, EngineUnavailable, SourceTooLarge, UnsupportedSource
from .sources import Source


@dataclass(frozen=True)
class MediaInfo:
    container: str  # ffprobe's format_name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    duration: float | None  # seconds; None when the container does not say
    video_codec: str | None  # None: no video stream (cover art does not count)
    audio_codec: str | None  # None: no audio stream
    width: int = 0  # display size: after rotation and the sample aspect ratio (0 without video)
    height: int = 0
    stored_width: int = 0  # pixel grid after rotation, before the sample aspect ratio
    stored_height: int = 0
    rotation: int = 0  # degrees clockwise that ffmpeg turns the picture (0, 90, 180, 270)
    fps: float | None = None
    streams: tuple[tuple[str, str], ...] = ()  # (codec_type, codec_name) of every stream, for info=1

    @property
    def has_video(self) -> bool:
        return self.video_codec is not None

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None


def input_options(protocols: str = "file") -> list[str]:
    """Options that go before ``-i`` for every ffmpeg and ffprobe run: local files, known demuxers."""
    return ["-protocol_whitelist", protocols, "-format_whitelist", conf.VIDEO_DEMUXERS]


def input_url(source: Source) -> str:
    """The source as a ``file:`` URL, so a name with ``:`` or a leading ``-`` is never read as anything else."""
    return f"file:{source.path}"


def probe_command(source: Source) -> list[str]:
    return [
        conf.FFPROBE, "-v", "error", "-hide_banner", *input_options(),
        "-show_format", "-show_streams", "-of", "json", input_url(source),
    ]  # fmt: skip


def probe_media(source: Source) -> MediaInfo:
    """Run ffprobe on ``source`` and refuse what is not media, damaged, or over the limits.

    What ffprobe says about a file is kept per process for its version (size and
    mtime), so repeated requests for one clip (thumbnails, a player's poster and
    stream) pay for one ffprobe start; the limits are checked every time.
    """
    if source.size == 0:
        raise CorruptSource("the file is empty", path=source.name)
    info = probe_version(
        str(source.path), source.name, source.size, source.mtime_ns,
        conf.FFPROBE, conf.VIDEO_DEMUXERS, float(conf.PROBE_TIMEOUT),
    )  # fmt: skip
    check_limits(source, info)
    return info


@functools.lru_cache(maxsize=512)
def probe_version(
    path: str, name: str, size: int, mtime_ns: int, ffprobe: str, demuxers: str, timeout: float
) -> MediaInfo:
    """One ffprobe run, cached on everything that could change its answer (failures are not cached)."""
    source = Source(Path(path), name, size, mtime_ns)
    try:
        result = subprocess.run(
            probe_command(source), capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False
        )
    except FileNotFoundError:
        raise EngineUnavailable("ffprobe is not installed here", tool=ffprobe) from None
    except subprocess.TimeoutExpired:
        raise CorruptSource(f"ffprobe could not read the header in {timeout:g} s", path=name) from None
    stderr = result.stderr.decode("utf-8", "replace").replace(path, name).strip()
    if result.returncode != 0:
        if not named_as_media(source):
            message = "the file is not an image, video or audio file this service reads"
            raise UnsupportedSource(message, path=name)
        raise CorruptSource(
            "the file is damaged, truncated or not really the video or audio its name says",
            path=name,
            detail=stderr[-300:],
        )
    try:
        report = json.loads(result.stdout)
    except ValueError:
        raise CorruptSource("ffprobe gave an unreadable report", path=name) from None
    return describe(report)


def keyframe_times(source: Source) -> tuple[float, ...]:
    """The times of the video's keyframes, from zero as ffmpeg's ``-start_at_zero`` counts them.

    HLS cuts segments there where it can (``transforms.hls.timeline``), so a segment's
    ffmpeg decodes no frame it does not keep. ffprobe reads the packets, not the
    pictures: about a quarter of a second for ten minutes of 1080p. Kept per process like
    ``probe_media``; an answer that does not come in TRANSFORMS_PROBE_TIMEOUT is "none"
    (segments are then cut on their nominal grid, which costs decoding, not correctness).
    """
    return keyframes_of(str(source.path), source.size, source.mtime_ns, conf.FFPROBE, conf.VIDEO_DEMUXERS,
                        float(conf.PROBE_TIMEOUT))


@functools.lru_cache(maxsize=64)
def keyframes_of(path: str, size: int, mtime_ns: int, ffprobe: str, demuxers: str, timeout: float) -> tuple[float, ...]:
    argv = [ffprobe, "-v", "error", *input_options(), "-select_streams", "V:0",
            "-show_entries", "packet=pts_time,flags:format=start_time", "-of", "csv=p=0", f"file:{path}"]  # fmt: skip
    try:
        result = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    rows = [line.split(",") for line in result.stdout.decode("ascii", "replace").split()]
    start = next((number(row[0]) for row in rows if len(row) == 1), None) or 0.0
    times = {number(row[0]) for row in rows if len(row) >= 2 and "K" in row[1]}
    return tuple(sorted(t - start for t in times if t is not None)) if result.returncode == 0 else ()


def named_as_media(source: Source) -> bool:
    """Whether the name says video or audio.

    ffprobe cannot tell a truncated MP4 from text named .mp4 (both: "Invalid data"), so
    the name decides: a file called video or audio that ffprobe cannot read is damaged
    (422); anything else it cannot read is not media this service serves (415).
    """
    kind = mimetypes.guess_type(source.name)[0] or ""
    return kind.startswith(("video/", "audio/"))


def describe(report: dict) -> MediaInfo:
    """Turn ffprobe's JSON into a MediaInfo (pure, so it can be tested on canned reports)."""
    streams = report.get("streams") or []
    fmt = report.get("format") or {}
    video = next(
        (
            s
            for s in streams
            if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
        ),
        None,
    )
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    durations = [number(fmt.get("duration"))] + [number(s.get("duration")) for s in (video, audio) if s]
    known = [d for d in durations if d is not None and d > 0]
    duration = durations[0] if durations[0] else (max(known) if known else None)
    info = MediaInfo(
        container=str(fmt.get("format_name", "")),
        duration=duration,
        video_codec=str(video.get("codec_name", "unknown")) if video else None,
        audio_codec=str(audio.get("codec_name", "unknown")) if audio else None,
        streams=tuple((str(s.get("codec_type", "unknown")), str(s.get("codec_name", "unknown"))) for s in streams),
    )
    if video is None:
        return info
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    rotation = rotation_of(video)
    sar = aspect(video.get("sample_aspect_ratio"))
    display_width, display_height = max(1, round(width * sar)), height
    if rotation in (90, 270):
        width, height = height, width
        display_width, display_height = display_height, display_width
    return MediaInfo(
        container=info.container,
        duration=duration,
        video_codec=info.video_codec,
        audio_codec=info.audio_codec,
        width=display_width,
        height=display_height,
        stored_width=width,
        stored_height=height,
        rotation=rotation,
        fps=rate(video.get("avg_frame_rate")) or rate(video.get("r_frame_rate")),
        streams=info.streams,
    )


def rotation_of(stream: dict) -> int:
    """Clockwise rotation from the display matrix (counterclockwise in ffprobe) or the old ``rotate`` tag."""
    for side_data in stream.get("side_data_list") or []:
        if "rotation" in side_data:
            degrees = number(side_data["rotation"])
            if degrees is not None:
                return round(-degrees / 90) % 4 * 90
    degrees = number((stream.get("tags") or {}).get("rotate"))
    return round(degrees / 90) % 4 * 90 if degrees is not None else 0


def check_limits(source: Source, info: MediaInfo) -> None:
    if not info.has_video and not info.has_audio:
        raise UnsupportedSource("the file has no video or audio stream", path=source.name)
    max_duration = float(conf.MAX_SOURCE_DURATION)
    if info.duration is not None and info.duration > max_duration:
        raise SourceTooLarge(
            f"the source lasts {info.duration:.0f} s, longer than the limit",
            path=source.name,
            limit_seconds=max_duration,
        )
    if info.has_video:
        if info.stored_width < 1 or info.stored_height < 1:
            raise CorruptSource("the video stream has no picture size", path=source.name)
        if info.stored_width * info.stored_height > conf.MAX_VIDEO_PIXELS:
            raise SourceTooLarge(
                f"the video is {info.stored_width}x{info.stored_height}, more pixels than the limit",
                path=source.name,
                limit_pixels=conf.MAX_VIDEO_PIXELS,
            )


def number(raw: object) -> float | None:
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def rate(raw: object) -> float | None:
    """A frame rate like ``30000/1001``; None for ``0/0`` or garbage."""
    try:
        value = Fraction(str(raw))
    except (ValueError, ZeroDivisionError):
        return None
    return float(value) if value > 0 else None


def aspect(raw: object) -> float:
    """A sample aspect ratio like ``16:9``; 1 when absent, unknown (``0:1``) or absurd."""
    try:
        value = Fraction(str(raw).replace(":", "/"))
    except (ValueError, ZeroDivisionError):
        return 1.0
    return float(value) if Fraction(1, 16) <= value <= 16 else 1.0
