"""Query string -> an immutable ``TransformSpec``.

Each parameter has one small parser in ``PARAMETERS`` that turns the raw string
into typed field values or raises ``InvalidSpec`` naming the parameter and the
accepted range. The spec is hashable and has one canonical string form, used for
ETags, cache keys and signatures.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from .conf import conf
from .errors import InvalidSpec
from .formats import FORMAT_ALIASES, REQUESTABLE

FITS = ("contain", "cover", "fill", "pad")
ENGINES = ("pillow", "convert", "cjpeg", "ffmpeg")
SIGNATURE_PARAMETER = "sig"


@dataclass(frozen=True)
class TransformSpec:
    """What the client asked for; geometry is resolved later against the source."""

    width: int | None = None
    height: int | None = None
    fit: str = "contain"
    format: str | None = None  # None: the source's own format; "auto": from Accept
    quality: int | None = None  # None: the configured default
    engine: str | None = None  # None: the configured default for the format
    upscale: bool = False
    bg: str = "ffffff"
    frame: float | str | None = None  # seconds, or "auto" (see transforms.video.AUTO_FRAME)
    start: float | None = None
    duration: float | None = None
    fps: int | None = None  # video outputs: frames per second (None: the source's rate)
    audio: bool = True  # video outputs: False drops the audio track
    # Image operations (issue 16). They come after the older fields and are left out of the
    # canonical form at their defaults, so every cache key made before them stays valid.
    gravity: str = "center"  # a compass point, "smart", or "fp:X,Y" (a focus point, 0..1)
    dpr: float = 1.0  # device-pixel ratio: multiplies size
    blur: float | None = None  # Gaussian sigma, in output pixels
    sharpen: float | None = None  # unsharp-mask sigma, in output pixels
    rotate: int = 0  # degrees clockwise, after EXIF orientation
    flip: str | None = None  # "h", "v" or "hv", after rotate
    crop: Region | None = None  # a region of the (oriented, rotated, flipped) source, before the resize
    trim: bool = False  # trim uniform borders (TRANSFORMS_TRIM_TOLERANCE)
    max_bytes: int | None = None  # byte budget of a lossy result
    info: bool = False  # JSON metadata instead of pixels
    rendition: str | None = None  # format=hls: a rendition's height, or "audio" (transforms.hls)
    segment: str | None = None  # format=hls: a segment's number, or "init"
    storyboard: str | None = None  # scrub previews: the tile box, "WxH", "Wx" or "xH" (transforms.storyboard)
    interval: float | None = None  # storyboard: seconds between tiles (None: from the duration)
    sheet: int | None = None  # storyboard: the number of one sprite sheet (a JPEG) instead of the WebVTT track

    def canonical(self) -> str:
        """Fields that differ from the defaults, in field order: ``k=v&k=v``."""
        parts = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value != field.default:
                parts.append(f"{field.name}={_render(value)}")
        return "&".join(parts)

    def replace(self, **changes: object) -> TransformSpec:
        return dataclasses.replace(self, **changes)

    @property
    def has_size(self) -> bool:
        return self.width is not None or self.height is not None

    def image_parameters(self) -> list[str]:
        """The image operations given (not size, fit or format): refused for video and audio sources."""
        defaults = TransformSpec()
        return [name for name in IMAGE_PARAMETERS if getattr(self, name) != getattr(defaults, name)]

    def media_parameters(self) -> list[str]:
        """The parameters given that only mean something for a video or audio source."""
        defaults = TransformSpec()
        return [name for name in MEDIA_PARAMETERS if getattr(self, name) != getattr(defaults, name)]

    @property
    def effective_quality(self) -> int:
        return self.quality if self.quality is not None else conf.DEFAULT_QUALITY

    @property
    def focus(self) -> tuple[float, float] | None:
        """The focus point of ``gravity=fp:X,Y`` as fractions of the source; None for other gravities."""
        if not self.gravity.startswith("fp:"):
            return None
        x, y = self.gravity[3:].split(",")
        return float(x), float(y)


class Region(NamedTuple):
    """``crop=X,Y,W,H``: a source region in pixels, or in fractions of the source when ``relative``."""

    x: float
    y: float
    width: float
    height: float
    relative: bool

    def __str__(self) -> str:
        return ",".join(_render(float(value)) for value in self[:4])

    def box(self, source: tuple[int, int]) -> tuple[float, float, float, float]:
        """(left, top, right, bottom) in source pixels."""
        scale_x, scale_y = source if self.relative else (1, 1)
        return (self.x * scale_x, self.y * scale_y, (self.x + self.width) * scale_x, (self.y + self.height) * scale_y)


def _render(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# --- parameter parsers: raw string -> field updates ---------------------------

SIZE_RE = re.compile(r"^(\d*)x(\d*)$")


def parse_size(raw: str) -> dict:
    max_dim = conf.MAX_DIMENSION
    accepted = f"WxH, Wx or xH with each side 1..{max_dim}"
    match = SIZE_RE.match(raw)
    if not match or not (match.group(1) or match.group(2)):
        raise InvalidSpec("size", f"{raw!r} is not a size", accepted)
    values = []
    for group in match.groups():
        if not group:
            values.append(None)
            continue
        number = int(group)
        if not 1 <= number <= max_dim:
            raise InvalidSpec("size", f"{number} is out of range", accepted)
        values.append(number)
    return {"width": values[0], "height": values[1]}


def choice(name: str, options: tuple[str, ...], aliases: Mapping[str, str] | None = None) -> Callable[[str], dict]:
    def parse(raw: str) -> dict:
        value = (aliases or {}).get(raw.lower(), raw.lower())
        if value not in options:
            raise InvalidSpec(name, f"{raw!r} is not one of them", ", ".join(options))
        return {name: value}

    return parse


def bounded(name: str, low: float, high: float, pattern: str, cast: Callable[[str], float], kind: str
            ) -> Callable[[str], dict]:
    """A number written as ``pattern`` (a regex), cast, and within ``low..high``."""

    def parse(raw: str) -> dict:
        accepted = f"{_render(low)}..{_render(high)}"
        if not re.fullmatch(pattern, raw):
            raise InvalidSpec(name, f"{raw!r} is not {kind}", accepted)
        value = cast(raw)
        if not low <= value <= high:
            raise InvalidSpec(name, f"{_render(value)} is out of range", accepted)
        return {name: value}

    return parse


def integer(name: str, low: int, high: int) -> Callable[[str], dict]:
    return bounded(name, low, high, rf"\d{{1,{len(str(high))}}}", int, "a whole number")


def decimal(name: str, low: float, high: float) -> Callable[[str], dict]:
    """A number with at most two decimals (dpr, sigmas)."""
    return bounded(name, float(low), float(high), r"\d{1,3}(?:\.\d{1,2})?", float, "a number")


def seconds(name: str, minimum: float = 0.0) -> Callable[[str], dict]:
    def parse(raw: str) -> dict:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < minimum or value > 86400:
            raise InvalidSpec(name, f"{raw!r} is not a number of seconds", f"{minimum:g}..86400")
        return {name: value}

    return parse


def flag(name: str) -> Callable[[str], dict]:
    def parse(raw: str) -> dict:
        if raw not in ("0", "1"):
            raise InvalidSpec(name, f"{raw!r} is not 0 or 1", "0, 1")
        return {name: raw == "1"}

    return parse


def parse_colour(raw: str) -> dict:
    value = raw.lstrip("#").lower()
    if not re.fullmatch(r"[0-9a-f]{6}", value):
        raise InvalidSpec("bg", f"{raw!r} is not a colour", "six hex digits, e.g. ffffff")
    return {"bg": value}


def frame_time(raw: str) -> dict:
    """``frame=<seconds>``, or ``frame=auto``: a point inside the clip, chosen once its length is known."""
    return {"frame": "auto"} if raw == "auto" else seconds("frame")(raw)


def rendition(raw: str) -> dict:
    """``rendition=<height>`` (a whole number of pixels) or ``rendition=audio``; which ones a source offers
    is decided against it (``transforms.hls``)."""
    if raw != "audio":
        integer("rendition", 1, conf.MAX_DIMENSION)(raw)
        raw = str(int(raw))
    return {"rendition": raw}


def segment(raw: str) -> dict:
    """``segment=<n>`` (from 0) or ``segment=init`` (the fMP4 initialization section)."""
    if raw != "init":
        raw = str(integer("segment", 0, 99999)(raw)["segment"])
    return {"segment": raw}


def parse_storyboard(raw: str) -> dict:
    low, high = STORYBOARD_TILE
    accepted = f"WxH, Wx or xH with each side {low}..{high}"
    match = SIZE_RE.match(raw)
    if not match or not (match.group(1) or match.group(2)):
        raise InvalidSpec("storyboard", f"{raw!r} is not a tile size", accepted)
    for group in match.groups():
        if group and not low <= int(group) <= high:
            raise InvalidSpec("storyboard", f"{int(group)} is out of range", accepted)
    width, height = (str(int(group)) if group else "" for group in match.groups())
    return {"storyboard": f"{width}x{height}"}


def parse_interval(raw: str) -> dict:
    low, high = STORYBOARD_INTERVAL
    value = seconds("interval")(raw)["interval"]
    if not low <= value <= high:
        raise InvalidSpec("interval", f"{raw!r} is out of range", f"{low:g}..{high:g} seconds")
    return {"interval": value}


def positive_seconds(name: str) -> Callable[[str], dict]:
    parse_any = seconds(name)

    def parse(raw: str) -> dict:
        result = parse_any(raw)
        if result[name] <= 0:
            raise InvalidSpec(name, "must be more than zero", "0..86400, exclusive of 0")
        return result

    return parse


COMPASS = ("center", "north", "south", "east", "west", "northeast", "northwest", "southeast", "southwest")
GRAVITY_ALIASES = {"centre": "center", "ce": "center", "no": "north", "so": "south", "ea": "east", "we": "west",
                   "noea": "northeast", "nowe": "northwest", "soea": "southeast", "sowe": "southwest", "sm": "smart"}
FRACTION = r"(?:0(?:\.\d{1,6})?|1(?:\.0{1,6})?|\.\d{1,6})"


def parse_gravity(raw: str) -> dict:
    value = GRAVITY_ALIASES.get(raw.lower(), raw.lower())
    if value in COMPASS or value == "smart":
        return {"gravity": value}
    match = re.fullmatch(rf"fp:({FRACTION}),({FRACTION})", value)
    if not match:
        raise InvalidSpec("gravity", f"{raw!r} is not a gravity", ", ".join(COMPASS) + ", smart, fp:X,Y (0..1)")
    x, y = float(match.group(1)), float(match.group(2))
    return {"gravity": f"fp:{_render(x)},{_render(y)}"}


def parse_rotate(raw: str) -> dict:
    if raw not in ("0", "90", "180", "270"):
        raise InvalidSpec("rotate", f"{raw!r} is not a right angle", "0, 90, 180, 270 (degrees clockwise)")
    return {"rotate": int(raw)}


def parse_flip(raw: str) -> dict:
    value = {"vh": "hv"}.get(raw.lower(), raw.lower())
    if value not in ("h", "v", "hv"):
        raise InvalidSpec("flip", f"{raw!r} is not a flip", "h (left-right), v (top-bottom), hv (both)")
    return {"flip": value}


def parse_crop(raw: str) -> dict:
    """``X,Y,W,H``: whole numbers are pixels; numbers up to 1 with a decimal point are fractions."""
    accepted = "X,Y,W,H in pixels (whole numbers) or fractions of the source (0..1, e.g. 0.25,0,0.5,1)"
    parts = raw.split(",")
    if len(parts) != 4 or not all(re.fullmatch(r"\d{1,5}(?:\.\d{1,6})?", part) for part in parts):
        raise InvalidSpec("crop", f"{raw!r} is not a region", accepted)
    values = [float(part) for part in parts]
    relative = any("." in part for part in parts)
    if relative and max(values) > 1:
        raise InvalidSpec("crop", "fractions must be 0..1 (pixels are whole numbers)", accepted)
    if values[2] <= 0 or values[3] <= 0:
        raise InvalidSpec("crop", "the width and height must be more than zero", accepted)
    if relative and (values[0] + values[2] > 1 or values[1] + values[3] > 1):
        raise InvalidSpec("crop", "the region reaches past the source's edge (X+W and Y+H at most 1)", accepted)
    return {"crop": Region(*values, relative=relative)}


PARAMETERS: dict[str, Callable[[str], dict]] = {
    "size": parse_size,
    "fit": choice("fit", FITS),
    "format": choice("format", REQUESTABLE, FORMAT_ALIASES),
    "quality": integer("quality", 1, 100),
    "engine": choice("engine", ENGINES),
    "upscale": flag("upscale"),
    "bg": parse_colour,
    "frame": frame_time,
    "start": seconds("start"),
    "duration": positive_seconds("duration"),
    "fps": integer("fps", 1, 120),
    "audio": flag("audio"),
    "gravity": parse_gravity,
    "dpr": decimal("dpr", 1, 4),
    "blur": decimal("blur", 0.1, 50),
    "sharpen": decimal("sharpen", 0.1, 10),
    "rotate": parse_rotate,
    "flip": parse_flip,
    "crop": parse_crop,
    "trim": flag("trim"),
    "max_bytes": integer("max_bytes", 256, 50_000_000),
    "info": flag("info"),
    "rendition": rendition,
    "segment": segment,
    "storyboard": parse_storyboard,
    "interval": parse_interval,
    "sheet": integer("sheet", 0, 9999),
}

# Fields of TransformSpec that only image sources take (video frames and transcodes do not).
IMAGE_PARAMETERS = ("gravity", "dpr", "blur", "sharpen", "rotate", "flip", "crop", "trim", "max_bytes")

# Fields of TransformSpec that apply to video and audio sources only.
MEDIA_PARAMETERS = ("frame", "start", "duration", "fps", "audio",
                    "rendition", "segment", "storyboard", "interval", "sheet")
# Storyboard tiles (pixels per side) and the seconds between them that a request may ask for.
STORYBOARD_TILE = (16, 640)
STORYBOARD_INTERVAL = (0.5, 3600.0)


def parse_query(query: Mapping[str, list[str]]) -> TransformSpec:
    """Parse a query (name -> list of values, e.g. a QueryDict's ``lists()``) into a spec.

    Unknown and repeated parameters are errors, so that two URLs that look
    different never silently make the same (or a surprising) result.
    """
    fields: dict[str, object] = {}
    for name, values in query.items():
        if name == SIGNATURE_PARAMETER:
            continue
        parser = PARAMETERS.get(name)
        if parser is None:
            raise InvalidSpec(name, "unknown parameter", ", ".join(sorted(PARAMETERS)))
        if len(values) != 1:
            raise InvalidSpec(name, "given more than once", "one value")
        fields.update(parser(values[0]))
    return TransformSpec(**fields)
