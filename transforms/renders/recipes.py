"""Validate a render recipe (JSON) into its normalised form, collecting every field error.

A recipe is checked completely before anything is queued: unknown keys, wrong types,
negative or absurd numbers, sources that do not exist or leave MEDIA_ROOT (through
``sources.resolve``, the one containment check). The result is plain JSON with every
default filled in, so the row stores exactly what the worker will render.

    {"size": [1280, 720], "fps": 24, "format": "mp4",
     "clips": [{"video": "intro.mp4", "start": 0, "end": 4},
               {"image": "1.jpg", "duration": 3, "zoom": 1.1},
               {"title": "Hello", "duration": 2, "font_size": 64,
                "color": "#ffffff", "background": "#000000"}],
     "crossfade": 0.5,
     "audio": {"source": "music.mp3", "volume": 0.5, "loop": true}}
"""

from __future__ import annotations

import math
import re
from typing import Any

from ..errors import TransformError
from ..probe import probe_media
from ..sources import probe_image, resolve
from .conf import conf
from .errors import InvalidRecipe

FORMATS = ("mp4", "webm")
TOP_KEYS = {"size", "fps", "format", "clips", "crossfade", "audio"}
CLIP_KEYS = {
    "video": {"video", "start", "end"},
    "image": {"image", "duration", "zoom"},
    "title": {"title", "duration", "font_size", "color", "background"},
}
AUDIO_KEYS = {"source", "volume", "loop", "start"}
# What an absent key means: the validator fills these in, the admin's editor starts from them.
RECIPE_DEFAULTS = {"size": [1280, 720], "fps": 24, "format": "mp4", "crossfade": 0.0}
CLIP_DEFAULTS: dict[str, dict[str, Any]] = {
    "video": {"start": 0.0, "end": None},
    "image": {"duration": 3.0, "zoom": 1.0},
    "title": {"duration": 2.0, "font_size": 48, "color": "#ffffff", "background": "#000000"},
}
AUDIO_DEFAULTS = {"volume": 1.0, "loop": True, "start": 0.0}
# An end this close past a clip's probed length is the same frame (containers round durations).
END_TOLERANCE = 0.05
COLOUR = re.compile(r"^#?([0-9a-fA-F]{6})$")
MAX_ZOOM = 4.0
MAX_VOLUME = 4.0
MAX_TITLE_CHARS = 500


class _Checker:
    """Collects errors by field path while the recipe is walked once."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)

    def unknown_keys(self, where: str, data: dict, allowed: set[str]) -> None:
        for key in sorted(set(data) - allowed):
            self.add(f"{where}.{key}" if where else key, f"unknown key; accepted: {', '.join(sorted(allowed))}")

    def number(
        self, field: str, value: Any, low: float, high: float, *, low_open: bool = False, integer: bool = False
    ) -> float | None:
        kind = "an integer" if integer else "a number"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.add(field, f"must be {kind}")
            return None
        if integer and value != int(value):
            self.add(field, "must be an integer")
            return None
        if value < low or (low_open and value == low) or value > high:
            bound = f"more than {low:g}" if low_open else f"at least {low:g}"
            self.add(field, f"must be {bound} and at most {high:g}, got {value:g}")
            return None
        return int(value) if integer else float(value)

    def source(self, field: str, value: Any, kind: str) -> tuple[str | None, float | None]:
        """The path if it names a readable ``kind`` file inside MEDIA_ROOT, and its length in seconds."""
        if not isinstance(value, str) or not value:
            self.add(field, "must be a path relative to MEDIA_ROOT")
            return None, None
        try:
            found = resolve(value)
            if kind == "image":
                probe_image(found)
                return value, None
            info = probe_media(found)
        except TransformError as exc:
            self.add(field, f"{value}: {exc.message}")
            return None, None
        if not (info.has_video if kind == "video" else info.has_audio):
            self.add(field, f"{value}: the file has no {kind} stream")
            return None, None
        return value, info.duration

    def colour(self, field: str, value: Any) -> str | None:
        match = COLOUR.match(value) if isinstance(value, str) else None
        if match is None:
            self.add(field, "must be a hex colour like #ff8800")
            return None
        return "#" + match.group(1).lower()


def validate_recipe(data: Any) -> dict[str, Any]:
    """Return the normalised recipe or raise InvalidRecipe naming every bad field."""
    check = _Checker()
    if not isinstance(data, dict):
        raise InvalidRecipe({"recipe": ["must be a JSON object"]})
    check.unknown_keys("", data, TOP_KEYS)
    recipe: dict[str, Any] = {}
    max_dimension = conf.MAX_DIMENSION

    size = data.get("size", RECIPE_DEFAULTS["size"])
    if not (isinstance(size, list) and len(size) == 2):
        check.add("size", "must be [width, height]")
    else:
        width = check.number("size", size[0], 16, max_dimension, integer=True)
        height = check.number("size", size[1], 16, max_dimension, integer=True)
        if width is not None and height is not None:
            if width % 2 or height % 2:
                check.add("size", "width and height must be even (H.264 and VP9 use 4:2:0 chroma)")
            recipe["size"] = [width, height]
    recipe["fps"] = check.number("fps", data.get("fps", RECIPE_DEFAULTS["fps"]), 1, conf.MAX_FPS, integer=True)
    fmt = data.get("format", RECIPE_DEFAULTS["format"])
    if fmt not in FORMATS:
        check.add("format", f"must be one of {', '.join(FORMATS)}")
    recipe["format"] = fmt
    crossfade = check.number("crossfade", data.get("crossfade", RECIPE_DEFAULTS["crossfade"]), 0, 10)
    recipe["crossfade"] = crossfade or 0.0

    clips = data.get("clips")
    recipe["clips"] = []
    durations: list[float | None] = []
    if not isinstance(clips, list) or not clips:
        check.add("clips", "must be a non-empty list of video, image or title clips")
    elif len(clips) > conf.MAX_CLIPS:
        check.add("clips", f"at most {conf.MAX_CLIPS} clips")
    else:
        for index, clip in enumerate(clips):
            normalised, duration = _clip(check, f"clips[{index}]", clip)
            recipe["clips"].append(normalised)
            durations.append(duration)

    if "audio" in data and data["audio"] is not None:
        recipe["audio"] = _audio(check, data["audio"])

    known = [d for d in durations if d is not None]
    if crossfade and known and crossfade >= min(known):
        check.add("crossfade", f"must be shorter than the shortest clip ({min(known):g} s)")
    total = sum(known) - (crossfade or 0) * max(0, len(durations) - 1)
    if total > conf.MAX_SECONDS:
        check.add("clips", f"the render would last {total:g} s, more than {conf.MAX_SECONDS} s")

    if check.errors:
        raise InvalidRecipe(check.errors)
    return recipe


def _clip(check: _Checker, where: str, clip: Any) -> tuple[dict[str, Any], float | None]:
    """One clip, normalised, and its duration (None when it cannot be told: a bad source or number)."""
    if not isinstance(clip, dict):
        check.add(where, "must be an object with one of: video, image, title")
        return {}, None
    kinds = [kind for kind in CLIP_KEYS if kind in clip]
    if len(kinds) != 1:
        check.add(where, "must have exactly one of: video, image, title")
        return {}, None
    kind = kinds[0]
    check.unknown_keys(where, clip, CLIP_KEYS[kind])
    clip = {**CLIP_DEFAULTS[kind], **clip}
    if kind == "video":
        return _video_clip(check, where, clip)
    duration = check.number(f"{where}.duration", clip["duration"], 0, 3600, low_open=True)
    if kind == "image":
        source, _ = check.source(f"{where}.image", clip["image"], "image")
        zoom = check.number(f"{where}.zoom", clip["zoom"], 1.0, MAX_ZOOM)
        return {"image": source, "duration": duration, "zoom": zoom}, duration
    text = clip["title"]
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TITLE_CHARS:
        check.add(f"{where}.title", f"must be non-empty text of at most {MAX_TITLE_CHARS} characters")
    font_size = check.number(f"{where}.font_size", clip["font_size"], 4, 1000, integer=True)
    colour = check.colour(f"{where}.color", clip["color"])
    background = check.colour(f"{where}.background", clip["background"])
    return {"title": text, "duration": duration, "font_size": font_size, "color": colour,
            "background": background}, duration


def _video_clip(check: _Checker, where: str, clip: dict[str, Any]) -> tuple[dict[str, Any], float | None]:
    """A stretch of a video file: start and end must lie inside the file's probed length."""
    source, length = check.source(f"{where}.video", clip["video"], "video")
    start = check.number(f"{where}.start", clip["start"], 0, 86400)
    end = None
    if clip["end"] is not None:
        end = check.number(f"{where}.end", clip["end"], 0, 86400, low_open=True)
        if start is not None and end is not None and end <= start:
            check.add(f"{where}.end", "must be after start")
            end = None
    if length is not None and start is not None and start >= length:
        check.add(f"{where}.start", f"must be before the end of {source} ({length:g} s long)")
        start = None
    if length is not None and end is not None and end > length + END_TOLERANCE:
        check.add(f"{where}.end", f"must be at most {length:g} s, the length of {source}")
        end = None
    stop = end if end is not None else length
    duration = stop - start if (start is not None and stop is not None) else None
    return {"video": source, "start": start or 0.0, "end": end}, duration


def _audio(check: _Checker, audio: Any) -> dict[str, Any]:
    if not isinstance(audio, dict):
        check.add("audio", "must be an object with a source")
        return {}
    check.unknown_keys("audio", audio, AUDIO_KEYS)
    audio = {**AUDIO_DEFAULTS, **audio}
    source, _ = check.source("audio.source", audio.get("source"), "audio")
    volume = check.number("audio.volume", audio["volume"], 0, MAX_VOLUME)
    start = check.number("audio.start", audio["start"], 0, 86400)
    loop = audio["loop"]
    if not isinstance(loop, bool):
        check.add("audio.loop", "must be true or false")
    return {"source": source, "volume": volume, "loop": loop, "start": start}


def recipe_sources(recipe: dict[str, Any]) -> list[str]:
    """Every media path a recipe reads, in order (used to re-check them when a job starts)."""
    names = [clip.get("video") or clip.get("image") for clip in recipe.get("clips", [])]
    if recipe.get("audio"):
        names.append(recipe["audio"]["source"])
    return [name for name in names if name]


def planned_seconds(recipe: dict[str, Any]) -> float | None:
    """How long the render of a validated recipe lasts; None when a whole video clip can no longer be probed."""
    total = 0.0
    clips = recipe.get("clips", [])
    for clip in clips:
        if "video" not in clip:
            total += clip["duration"]
            continue
        end = clip.get("end")
        if end is None:
            try:
                end = probe_media(resolve(clip["video"])).duration
            except TransformError:
                return None
            if end is None:
                return None
        total += end - clip.get("start", 0.0)
    return max(0.0, total - recipe.get("crossfade", 0.0) * max(0, len(clips) - 1))
