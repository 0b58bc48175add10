"""What a request asks of a video or audio source, decided before ffmpeg starts.

``check_media_spec`` refuses combinations that are wrong whatever the source
(before the ETag check, so a bad URL never gets a 304); ``media_job`` resolves the
spec against the probed source into a ``MediaJob``: the output format, the
geometry plan, the time window, the streams to keep. Every refusal names the
parameter and says why, with a 4xx status.
"""

from __future__ import annotations

from .conf import conf
from .engines.ffmpeg import MediaJob
from .errors import InvalidSpec, NotApplicable
from .formats import AUDIO_FORMATS, FRAME_FORMATS
from .geometry import even, plan_for
from .probe import MediaInfo
from .sources import Source
from .spec import TransformSpec

FRAME_ONLY_EXCLUDES = ("start", "duration", "fps", "audio")


def check_media_spec(spec: TransformSpec) -> None:
    """Refuse what no video or audio source could make, from the spec alone."""
    if spec.frame is not None:
        given = [name for name in spec.media_parameters() if name in FRAME_ONLY_EXCLUDES]
        if given:
            raise InvalidSpec("frame", f"a frame grab cannot be combined with {', '.join(given)}")
        if spec.format not in (None, "auto", *FRAME_FORMATS):
            raise InvalidSpec("format", f"a frame comes as jpeg, png or webp, not {spec.format}", "jpeg, png, webp")
        return
    if spec.format in (*FRAME_FORMATS, "avif", "auto"):
        raise NotApplicable(
            "format",
            f"{spec.format} is an image format: add frame=<seconds> for one frame of a video",
            accepted="mp4, webm, gif, mp3, m4a; or jpeg, png, webp with frame=",
        )
    if spec.format in AUDIO_FORMATS:
        if not spec.audio:
            raise InvalidSpec("audio", f"audio=0 leaves nothing for {spec.format}")
        for name in picture_parameters(spec):
            raise InvalidSpec(name, f"{spec.format} is audio only: it has no picture to apply {name} to")


def picture_parameters(spec: TransformSpec) -> list[str]:
    """The parameters given that need a picture: refused for audio outputs and audio-only sources."""
    return [name for name, given in (("size", spec.has_size), ("fps", spec.fps is not None)) if given]


def output_format(spec: TransformSpec, info: MediaInfo, source: Source, negotiated: str | None) -> str:
    """The format asked for, or the source's own kind: webm stays webm, other video becomes mp4,
    mp3 stays mp3, other audio becomes m4a; a frame defaults to jpeg."""
    if spec.frame is not None:
        if spec.format == "auto":
            return negotiated if negotiated in FRAME_FORMATS else "jpeg"
        return spec.format or "jpeg"
    if spec.format:
        return spec.format
    if info.has_video:
        return "webm" if source.name.lower().endswith(".webm") else "mp4"
    return "mp3" if info.audio_codec == "mp3" else "m4a"


def media_job(source: Source, info: MediaInfo, spec: TransformSpec, negotiated: str | None = None) -> MediaJob:
    """Resolve ``spec`` against the probed source, refusing (422) what this source cannot give."""
    if spec.engine not in (None, "ffmpeg"):
        # checked after the probe: a file that is not media at all is a 415 whatever the engine
        raise NotApplicable("engine", f"{spec.engine} does not read video or audio; only ffmpeg does")
    fmt = output_format(spec, info, source, negotiated)
    length = f" (it lasts {info.duration:g} s)" if info.duration is not None else ""
    if not info.has_video:
        if spec.frame is not None:
            raise NotApplicable("frame", "the file is audio only: it has no frame to grab")
        if fmt not in AUDIO_FORMATS:
            raise NotApplicable("format", f"the file is audio only: it cannot become {fmt}", accepted="mp3, m4a")
        for name in picture_parameters(spec):
            raise NotApplicable(name, f"the file is audio only: it has no picture to apply {name} to")
    if fmt in AUDIO_FORMATS and not info.has_audio:
        raise NotApplicable("format", f"the file has no audio stream to make {fmt} from")

    if spec.frame is not None:
        if info.duration is not None and spec.frame >= info.duration:
            raise NotApplicable("frame", f"{spec.frame:g} s is past the end{length}", duration=info.duration)
        plan = plan_for((info.width, info.height), spec)
        return MediaJob(source, info, fmt, plan, spec.effective_quality, spec.bg, frame=spec.frame)

    start = spec.start or 0.0
    if info.duration is not None and start >= info.duration:
        raise NotApplicable("start", f"{start:g} s is past the end{length}", duration=info.duration)
    limit = float(conf.MAX_GIF_DURATION if fmt == "gif" else conf.MAX_OUTPUT_DURATION)
    remaining = info.duration - start if info.duration is not None else None
    wanted = min(x for x in (spec.duration, remaining) if x is not None) if (spec.duration or remaining) else None
    if wanted is not None and wanted > limit:
        raise NotApplicable(
            "duration",
            f"the result would last {wanted:g} s, longer than the {limit:g} s limit for {fmt}; "
            "ask for a window with start= and duration=",
            limit_seconds=limit,
        )
    plan = None
    if fmt not in AUDIO_FORMATS:
        plan = plan_for((info.width, info.height), spec)
        if fmt != "gif":
            plan = even(plan)
    return MediaJob(
        source,
        info,
        fmt,
        plan,
        spec.effective_quality,
        spec.bg,
        start=spec.start,
        duration=min(wanted, limit) if wanted is not None else limit,
        fps=spec.fps,
        audio=spec.audio,
    )
