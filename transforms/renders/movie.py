"""Compose a validated recipe with MoviePy 2 and write it to a file.

This module knows MoviePy and nothing of queues, HTTP or the cache: ``render_recipe``
gets a proglog logger (``transforms.renders.progress``) and a working directory of its own. The
output is written there under a temporary name and only moved into place by the caller
once MoviePy returned, and every clip is closed in a ``with``/``finally``, so an abort
(cancel, timeout, a bad source) leaves nothing behind but that directory, which the
caller removes.
"""

from __future__ import annotations

import gc
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from ..sources import resolve
from .conf import conf

CODECS = {
    "mp4": {"codec": "libx264", "audio_codec": "aac", "ffmpeg_params": ["-movflags", "+faststart"]},
    "webm": {"codec": "libvpx-vp9", "audio_codec": "libopus",
             "ffmpeg_params": ["-pix_fmt", "yuv420p", "-row-mt", "1", "-deadline", "realtime", "-cpu-used", "8"]},
}
AUDIO_FPS = 44100


@dataclass(frozen=True)
class RenderPlan:
    """What the progress logger needs to know before MoviePy starts: is there an audio phase?"""

    has_audio: bool
    duration: float
    frames: int


def _rgb(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _fit(clip: Any, size: tuple[int, int], duration: float | None = None) -> Any:
    """Scale a clip to fit inside ``size`` and centre it on black (letterbox / pillarbox)."""
    from moviepy import CompositeVideoClip

    width, height = size
    scale = min(width / clip.w, height / clip.h)
    scaled = clip.resized(scale) if abs(scale - 1) > 1e-6 else clip
    if (scaled.w, scaled.h) == (width, height):
        return scaled
    composite = CompositeVideoClip([scaled.with_position("center")], size=size, bg_color=(0, 0, 0))
    return composite.with_duration(duration if duration is not None else scaled.duration)


def _video(spec: dict, size: tuple[int, int], stack: ExitStack) -> Any:
    from moviepy import VideoFileClip

    clip = stack.enter_context(VideoFileClip(str(resolve(spec["video"]).path)))
    end = spec["end"] if spec["end"] is not None else clip.duration
    if spec["start"] >= clip.duration:
        raise ValueError(f"{spec['video']}: start {spec['start']:g} s is past the end ({clip.duration:g} s)")
    end = min(end, clip.duration)
    return _fit(clip.subclipped(spec["start"], end), size)


def _image(spec: dict, size: tuple[int, int]) -> Any:
    """A still, upright (EXIF), contained in the frame, growing slowly to ``zoom`` when asked."""
    from moviepy import CompositeVideoClip, ImageClip

    with Image.open(resolve(spec["image"]).path) as image:
        pixels = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    duration = spec["duration"]
    clip = ImageClip(pixels).with_duration(duration)
    width, height = size
    base = min(width / clip.w, height / clip.h)
    zoom = spec["zoom"]
    if zoom > 1:
        moving = clip.resized(lambda t: base * (1 + (zoom - 1) * t / duration))
        return CompositeVideoClip([moving.with_position("center")], size=size, bg_color=(0, 0, 0)).with_duration(
            duration
        )
    return _fit(clip, size, duration)


def _title(spec: dict, size: tuple[int, int]) -> Any:
    from moviepy import CompositeVideoClip, TextClip

    width, height = size
    text = TextClip(
        font=str(conf.FONT),
        text=spec["title"],
        font_size=spec["font_size"],
        color=spec["color"],
        method="caption",
        size=(int(width * 0.9), None),
        # Without a vertical margin MoviePy sizes the box to the cap height and cuts descenders.
        margin=(0, max(2, spec["font_size"] // 2)),
        text_align="center",
    ).with_duration(spec["duration"])
    return CompositeVideoClip(
        [text.with_position("center")], size=size, bg_color=_rgb(spec["background"])
    ).with_duration(spec["duration"])


def _audio_track(spec: dict, duration: float, stack: ExitStack) -> Any:
    from moviepy import AudioFileClip, afx

    track = stack.enter_context(AudioFileClip(str(resolve(spec["source"]).path)))
    if spec["start"]:
        track = track.subclipped(min(spec["start"], track.duration - 0.01))
    if track.duration < duration and spec["loop"]:
        track = track.with_effects([afx.AudioLoop(duration=duration)])
    else:
        track = track.subclipped(0, min(duration, track.duration))
    if spec["volume"] != 1:
        track = track.with_effects([afx.MultiplyVolume(spec["volume"])])
    return track


def compose(recipe: dict, stack: ExitStack) -> Any:
    """The whole timeline as one MoviePy clip (sources registered on ``stack`` for closing)."""
    from moviepy import CompositeAudioClip, concatenate_videoclips, vfx

    size = (int(recipe["size"][0]), int(recipe["size"][1]))
    crossfade = float(recipe.get("crossfade") or 0)
    clips = []
    for index, spec in enumerate(recipe["clips"]):
        if "video" in spec:
            clip = _video(spec, size, stack)
        elif "image" in spec:
            clip = _image(spec, size)
        else:
            clip = _title(spec, size)
        if crossfade and index > 0:
            clip = clip.with_effects([vfx.CrossFadeIn(crossfade)])
        clips.append(clip)
    # The output is opaque: without dropping the composite's mask MoviePy feeds ffmpeg RGBA frames
    # (and VP9 refuses the alpha pixel format it then picks).
    timeline = concatenate_videoclips(clips, method="compose", padding=-crossfade if crossfade else 0).without_mask()
    if recipe.get("audio"):
        track = _audio_track(recipe["audio"], timeline.duration, stack)
        layers = [timeline.audio, track] if timeline.audio is not None else [track]
        timeline = timeline.with_audio(CompositeAudioClip(layers).with_duration(timeline.duration))
    return timeline


def plan(timeline: Any, fps: int) -> RenderPlan:
    return RenderPlan(timeline.audio is not None, float(timeline.duration), int(timeline.duration * fps + 0.5))


def render_recipe(recipe: dict, output: Path, workdir: Path, logger: Any, on_plan: Any = None) -> RenderPlan:
    """Write ``recipe`` to ``output`` (inside ``workdir``); MoviePy's temp audio goes to ``workdir`` too.

    ``on_plan`` is called with the RenderPlan before writing starts, so progress weights
    can account for an audio phase. Raising from the logger aborts the write; the caller
    removes ``workdir`` either way.
    """
    codecs = CODECS[recipe["format"]]
    try:
        with ExitStack() as stack:
            timeline = compose(recipe, stack)
            stack.callback(timeline.close)
            render_plan = plan(timeline, int(recipe["fps"]))
            if on_plan is not None:
                on_plan(render_plan)
            timeline.write_videofile(
                str(output),
                fps=int(recipe["fps"]),
                codec=codecs["codec"],
                audio=render_plan.has_audio,
                audio_fps=AUDIO_FPS,
                audio_codec=codecs["audio_codec"],
                temp_audiofile_path=str(workdir),
                preset=str(conf.X264_PRESET),
                ffmpeg_params=list(codecs["ffmpeg_params"]),
                threads=conf.THREADS or None,
                logger=logger,
            )
            return render_plan
    finally:
        # An abort in the audio phase leaves MoviePy's audio writer (and its ffmpeg) referenced
        # only by the traceback; collecting it now closes the pipe so that ffmpeg exits and is reaped.
        gc.collect()
