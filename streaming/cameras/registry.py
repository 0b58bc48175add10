"""The CAMERAS setting: ``name=source`` pairs separated by commas.

    demo=emulated                          frames drawn in-process (640x480, 15 fps)
    demo=emulated?size=320x240&fps=10      the same, smaller and slower
    lobby=v4l2:///dev/video0               a V4L2 webcam that delivers MJPEG (copied, not re-encoded)
    lobby=v4l2:///dev/video0?size=1280x720&fps=30&input=yuyv422
    door=rtsp://user:pass@door.example/s1  an RTSP camera (also rtsps://, http://, https://)
    loop=file:clips/loop.mp4               a video under MEDIA_ROOT, played in a loop

Parsed when first asked for (and again whenever the setting changes), so a bad
entry is an ``ImproperlyConfigured`` naming the entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import parse_qs, urlsplit

from django.core.exceptions import ImproperlyConfigured

from .conf import conf
from .sources import EmulatedSource, FfmpegSource, Source, redact

NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
SIZE = re.compile(r"^([1-9][0-9]{0,4})x([1-9][0-9]{0,4})$")
V4L2_INPUTS = {"mjpeg", "yuyv422", "nv12", "h264"}


@dataclass(frozen=True)
class Camera:
    """A named camera and how to open its source."""

    name: str
    spec: str
    kind: str  # emulated, v4l2, url, file
    target: str = ""
    options: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def description(self) -> str:
        """What a page may show about the source (credentials in URLs are hidden)."""
        if self.kind == "emulated":
            return "emulated (drawn in-process)"
        if self.kind == "v4l2":
            return f"V4L2 device {self.target}"
        if self.kind == "file":
            return f"file {self.target} (looped)"
        return redact(self.target)

    def open(self) -> Source:
        if self.kind == "emulated":
            return EmulatedSource(**self.options)
        return FfmpegSource(self.kind, self.target, dict(self.options))


def cameras() -> dict[str, Camera]:
    """The configured cameras by name, in the order they were listed."""
    return parse(conf.CAMERAS)


def get_camera(name: str) -> Camera | None:
    return cameras().get(name)


@lru_cache(maxsize=8)
def parse(value: str) -> dict[str, Camera]:
    found: dict[str, Camera] = {}
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        name, sep, spec = entry.partition("=")
        name, spec = name.strip(), spec.strip()
        if not sep or not spec:
            raise ImproperlyConfigured(f"CAMERAS entry {redact(entry)!r} must be name=source")
        if not NAME.match(name):
            raise ImproperlyConfigured(f"CAMERAS name {name!r}: use lowercase letters, digits, - and _")
        if name in found:
            raise ImproperlyConfigured(f"CAMERAS names {name!r} twice")
        try:
            found[name] = parse_source(name, spec)
        except ValueError as exc:
            raise ImproperlyConfigured(f"CAMERAS entry {name!r}: {exc}") from None
    return found


def parse_source(name: str, spec: str) -> Camera:
    """One source spec into a Camera; ValueError names what is wrong."""
    scheme = spec.split(":", 1)[0].split("?", 1)[0].lower()
    if scheme == "emulated":
        options = _options(spec.partition("?")[2], {"size", "fps"})
        return Camera(name, spec, "emulated", options=_emulated_options(options))
    if scheme == "v4l2":
        parts = urlsplit(spec)
        if not parts.path.startswith("/dev/"):
            raise ValueError("a V4L2 source is v4l2:///dev/videoN")
        options = _options(parts.query, {"size", "fps", "input"})
        return Camera(name, spec, "v4l2", parts.path, _v4l2_options(options))
    if scheme in {"rtsp", "rtsps", "http", "https"}:
        if not urlsplit(spec).hostname:
            raise ValueError("the URL has no host")
        return Camera(name, spec, "url", spec)
    if scheme == "file":
        path = spec[len("file:"):]
        if not path or path.startswith("/") or ".." in path.split("/"):
            raise ValueError("a file source is file:<path relative to MEDIA_ROOT>")
        return Camera(name, spec, "file", path)
    raise ValueError(f"unknown source {scheme!r} (emulated, v4l2://, rtsp://, http(s)://, file:)")


def _options(query: str, allowed: set[str]) -> dict[str, str]:
    raw = parse_qs(query, keep_blank_values=True, strict_parsing=False)
    unknown = set(raw) - allowed
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))} (accepted: {', '.join(sorted(allowed))})")
    return {key: values[-1] for key, values in raw.items()}


def _size(value: str) -> tuple[int, int]:
    match = SIZE.match(value)
    if not match:
        raise ValueError(f"size {value!r} must be WxH")
    return int(match[1]), int(match[2])


def _fps(value: str) -> float:
    try:
        fps = float(value)
    except ValueError:
        fps = 0.0
    if not 0 < fps <= 120:
        raise ValueError(f"fps {value!r} must be a number in (0, 120]")
    return fps


def _emulated_options(options: dict[str, str]) -> dict:
    parsed: dict = {}
    if "size" in options:
        parsed["size"] = _size(options["size"])
    if "fps" in options:
        parsed["fps"] = _fps(options["fps"])
    return parsed


def _v4l2_options(options: dict[str, str]) -> dict:
    parsed: dict = {}
    if "size" in options:
        width, height = _size(options["size"])
        parsed["size"] = f"{width}x{height}"
    if "fps" in options:
        parsed["fps"] = _fps(options["fps"])
    if "input" in options:
        if options["input"] not in V4L2_INPUTS:
            raise ValueError(f"input {options['input']!r} (accepted: {', '.join(sorted(V4L2_INPUTS))})")
        parsed["input_format"] = options["input"]
    return parsed
