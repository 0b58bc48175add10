"""What a request asks of a video or audio source, decided before ffmpeg starts.

``check_media_spec`` refuses combinations that are wrong whatever the source
(before the ETag check, so a bad URL never gets a 304); ``media_job`` resolves the
spec against the probed source into a ``MediaJob``: the output format, the
geometry plan, the time window, the streams to keep. Every refusal names the
parameter and says why, with a 4xx status.
"""

from __future__ import annotations

import dataclasses

from .conf import conf
from .engines.ffmpeg import MediaJob
from .engines.segments import SegmentJob
from .engines.sprites import SheetJob
from .engines.text import TextJob
from .errors import InvalidSpec, NotApplicable
from .formats import AUDIO_FORMATS, FRAME_FORMATS
from .geometry import even, plan_for
from .hls import hls_job
from .probe import MediaInfo
from .sources import Source
from .spec import TransformSpec
from .storyboard import storyboard_job

FRAME_ONLY_EXCLUDES = ("start", "duration", "fps", "audio")
HLS_PARAMETERS = ("rendition", "segment")
STORYBOARD_PARAMETERS = ("storyboard", "interval", "sheet")
# frame=auto: this far into the clip (a tenth), so a thumbnail is never past the end of a short clip
# and rarely the black first frame of a long one.
AUTO_FRAME = "auto"
AUTO_FRAME_SHARE = 0.1


def makes_text(spec: TransformSpec) -> bool:
    """Whether the result is a playlist or a storyboard track, written in-process (``engines.text``)."""
    return (spec.format == "hls" and spec.segment is None) or (spec.storyboard is not None and spec.sheet is None)


def check_media_spec(spec: TransformSpec) -> None:
    """Refuse what no video or audio source could make, from the spec alone."""
    if check_parts(spec):
        return
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


def check_parts(spec: TransformSpec) -> bool:
    """HLS and storyboard requests take only their own parameters; True when the spec is one of them."""
    given = given_parameters(spec)
    if spec.format == "hls":
        only(given, ("format", *HLS_PARAMETERS), "format=hls")
        if spec.segment is not None and spec.rendition is None:
            raise InvalidSpec("segment", "names a segment of a rendition: add rendition=", "rendition=<height>")
        return True
    if spec.storyboard is not None:
        only(given, STORYBOARD_PARAMETERS, "storyboard=")
        return True
    for name in given:
        if name in HLS_PARAMETERS or name in STORYBOARD_PARAMETERS:
            raise InvalidSpec(name, f"applies only with {'format=hls' if name in HLS_PARAMETERS else 'storyboard='}")
    return False


def only(given: list[str], allowed: tuple[str, ...], what: str) -> None:
    for name in given:
        if name not in allowed:
            raise InvalidSpec(name, f"cannot be combined with {what}", ", ".join(allowed))


def given_parameters(spec: TransformSpec) -> list[str]:
    """The query parameters a spec was made from (``size`` for width and height)."""
    names: list[str] = []
    for field in dataclasses.fields(spec):
        name = "size" if field.name in ("width", "height") else field.name
        if getattr(spec, field.name) != field.default and name not in names:
            names.append(name)
    return names


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


def media_job(source: Source, info: MediaInfo, spec: TransformSpec,
              negotiated: str | None = None) -> MediaJob | SegmentJob | SheetJob | TextJob:
    """Resolve ``spec`` against the probed source, refusing (422) what this source cannot give."""
    if spec.engine not in (None, "ffmpeg"):
        # checked after the probe: a file that is not media at all is a 415 whatever the engine
        raise NotApplicable("engine", f"{spec.engine} does not read video or audio; only ffmpeg does")
    if spec.format == "hls":
        return hls_job(source, info, spec)
    if spec.storyboard is not None:
        return storyboard_job(source, info, spec)
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
        return frame_job(source, info, spec, fmt)

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


def frame_job(source: Source, info: MediaInfo, spec: TransformSpec, fmt: str) -> MediaJob:
    """One frame, at the time asked for or, for ``frame=auto``, a tenth of the way in."""
    frame = (info.duration or 0.0) * AUTO_FRAME_SHARE if spec.frame == AUTO_FRAME else float(spec.frame or 0.0)
    if info.duration is not None and frame >= info.duration:
        length = f" (it lasts {info.duration:g} s)"
        raise NotApplicable("frame", f"{frame:g} s is past the end{length}", duration=info.duration)
    plan = plan_for((info.width, info.height), spec)
    return MediaJob(source, info, fmt, plan, spec.effective_quality, spec.bg, frame=frame)
