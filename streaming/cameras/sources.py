"""Where a camera's frames come from.

A source yields JPEG frames (bytes) until it is told to stop or fails with
``SourceError``. ``EmulatedSource`` draws its frames with Pillow (a moving
pattern, a frame counter and a clock, so a viewer can see it is live). Every other
kind is ffmpeg writing MJPEG to its stdout through ``streaming.pipeline.Pipeline``
(own process group, killed and reaped on close); the bytes are cut into frames on
JPEG markers and passed on without re-encoding.

The argv builders are pure functions of their arguments so they can be tested as
a table; the ffmpeg path comes from ``streaming_conf.FFMPEG`` at call time.
"""

from __future__ import annotations

import io
import os
import re
import select
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, ImageDraw, ImageFont

from ..conf import conf as streaming_conf
from ..pipeline import Pipeline, PipelineError
from .conf import conf
from .jpeg_splitter import JpegSplitter

QUIET = ["-nostdin", "-hide_banner", "-loglevel", "error"]
MJPEG_OUT = ["-an", "-f", "mjpeg", "-"]
ENCODE_MJPEG = ["-c:v", "mjpeg", "-q:v", "5"]
READ_SIZE = 1 << 20
# A source runs for as long as it has viewers: the pipeline's own deadline is
# pushed out of the way and a stall (no bytes for STALL seconds) is caught here.
FOREVER = 10 * 365 * 24 * 3600.0
FONT_PATH = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
URL_PROTOCOLS = {
    "rtsp": "rtsp,rtp,udp,tcp,pipe",
    "rtsps": "rtsps,rtsp,rtp,udp,tcp,tls,pipe",
    "http": "http,tcp,pipe",
    "https": "https,http,tls,tcp,pipe",
}
CREDENTIALS = re.compile(r"(\w+://)[^/@\s]+@")
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


class SourceError(Exception):
    """The source could not start or stopped producing; the message is safe to show a viewer."""


def redact(text: str) -> str:
    """Hide ``user:password@`` in URLs: source errors and descriptions end up on public pages."""
    return CREDENTIALS.sub(r"\1***@", text)


# --- argv builders (pure) ---------------------------------------------------


def v4l2_argv(
    ffmpeg: str, device: str, *, size: str = "", fps: float = 0, input_format: str = "mjpeg"
) -> list[str]:
    """A V4L2 device. A camera that delivers MJPEG itself is copied, not re-encoded."""
    argv = [ffmpeg, *QUIET, "-protocol_whitelist", "file,pipe", "-f", "v4l2", "-input_format", input_format]
    if size:
        argv += ["-video_size", size]
    if fps:
        argv += ["-framerate", f"{fps:g}"]
    argv += ["-i", device]
    argv += ["-c:v", "copy"] if input_format == "mjpeg" else ENCODE_MJPEG
    return argv + MJPEG_OUT


def url_argv(ffmpeg: str, url: str) -> list[str]:
    """An RTSP or HTTP(S) stream; the whitelist opens only the protocols its scheme needs."""
    scheme = url.split(":", 1)[0].lower()
    if scheme not in URL_PROTOCOLS:
        raise ValueError(f"unsupported URL scheme {scheme!r}")
    argv = [ffmpeg, *QUIET, "-protocol_whitelist", URL_PROTOCOLS[scheme]]
    if scheme.startswith("rtsp"):
        argv += ["-rtsp_transport", "tcp"]
    return argv + ["-i", url, *ENCODE_MJPEG, *MJPEG_OUT]


def file_loop_argv(ffmpeg: str, path: str) -> list[str]:
    """A video file played at its own rate, looped forever."""
    return [
        ffmpeg, *QUIET, "-protocol_whitelist", "file,pipe",
        "-re", "-stream_loop", "-1", "-i", f"file:{path}",
        *ENCODE_MJPEG, *MJPEG_OUT,
    ]


def contained_path(root: str | os.PathLike, relative: str) -> str:
    """The real path of ``relative`` under ``root``; SourceError if it escapes or is no file."""
    base = os.path.realpath(root)
    if os.path.isabs(relative) or relative.startswith("~"):
        raise SourceError(f"{relative}: must be a path relative to the media folder")
    real = os.path.realpath(os.path.join(base, relative))
    if os.path.commonpath([base, real]) != base:
        raise SourceError(f"{relative}: outside the media folder")
    if not os.path.isfile(real):
        raise SourceError(f"{relative}: no such file in the media folder")
    return real


# --- sources ---------------------------------------------------------------


class Source:
    """A stream of JPEG frames. ``frames`` returns when ``stop`` is set, raises SourceError on failure."""

    def frames(self, stop: threading.Event) -> Iterator[bytes]:
        raise SourceError(f"{type(self).__name__} produces no frames")


@dataclass
class EmulatedSource(Source):
    """Frames drawn in-process: a sweeping bar and ball over a textured card, a counter, a clock."""

    size: tuple[int, int] = (640, 480)
    fps: float = 15.0
    quality: int = 80

    def frames(self, stop: threading.Event) -> Iterator[bytes]:
        background = self._background()
        font = _font(max(12, self.size[1] // 10))
        small = _font(max(10, self.size[1] // 20))
        interval = 1.0 / self.fps
        start = time.monotonic()
        index = 0
        while not stop.is_set():
            yield self.draw(background, index, font, small)
            index += 1
            due = start + index * interval
            now = time.monotonic()
            if due < now - interval:  # fell behind (a busy machine): skip, do not burst
                index = int((now - start) / interval) + 1
                due = start + index * interval
            stop.wait(max(0.0, due - now))

    def draw(self, background: Image.Image, index: int, font: Font, small: Font) -> bytes:
        """Frame ``index``: its bar, ball, clock and counter move, so a viewer can see the stream is live."""
        width, height = self.size
        image = background.copy()
        draw = ImageDraw.Draw(image)
        x = int((index * width / (self.fps * 4)) % width)
        draw.rectangle([x, 0, x + width // 16, height], fill=(255, 255, 255))
        ball = height // 8
        y = int((index * height / (self.fps * 3)) % (height - ball))
        draw.ellipse([width - x - ball, y, width - x, y + ball], fill=(230, 40, 40))
        now = time.time()
        clock = time.strftime("%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}"
        draw.rectangle([0, height - height // 6, width, height], fill=(0, 0, 0))
        draw.text((width // 40, height - height // 7), clock, fill=(255, 255, 255), font=font)
        draw.text((width // 40, height // 40), f"#{index}", fill=(255, 255, 0), font=small)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=self.quality)
        return out.getvalue()

    def _background(self) -> Image.Image:
        """A gradient with noise: it compresses like a real scene (~50 KB at 640x480), not like a flat card."""
        width, height = self.size
        gradient = Image.linear_gradient("L").resize((width, height))
        noise = Image.effect_noise((width, height), 40)
        red = Image.blend(gradient, noise, 0.35)
        green = gradient.rotate(90).resize((width, height))
        blue = Image.blend(noise, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT), 0.6)
        return Image.merge("RGB", (red, green, blue))


def _font(size: int) -> Font:
    try:
        return ImageFont.truetype(FONT_PATH, size)
    except OSError:
        return ImageFont.load_default(size)


@dataclass
class FfmpegSource(Source):
    """ffmpeg writing MJPEG to a pipe; the argv is built when the source starts."""

    kind: str
    target: str
    options: dict

    def argv(self) -> list[str]:
        ffmpeg = streaming_conf.FFMPEG
        if self.kind == "v4l2":
            return v4l2_argv(ffmpeg, self.target, **self.options)
        if self.kind == "url":
            return url_argv(ffmpeg, self.target)
        if self.kind == "file":
            return file_loop_argv(ffmpeg, contained_path(settings.MEDIA_ROOT, self.target))
        raise SourceError(f"unknown source kind {self.kind!r}")

    def frames(self, stop: threading.Event) -> Iterator[bytes]:
        stall = conf.CAMERAS_STALL_TIMEOUT
        try:
            pipeline = Pipeline([self.argv()], deadline=FOREVER)
        except OSError as exc:
            raise SourceError(f"cannot start ffmpeg: {exc.strerror}") from None
        splitter = JpegSplitter()
        try:
            quiet_since = time.monotonic()
            while not stop.is_set():
                ready, _, _ = select.select([pipeline.fileno()], [], [], 0.25)
                if not ready:
                    if time.monotonic() - quiet_since > stall:
                        raise SourceError(f"no frames for {stall:g} s")
                    continue
                quiet_since = time.monotonic()
                chunk = pipeline.read(READ_SIZE)
                if not chunk:
                    raise SourceError("the source ended")
                yield from splitter.feed(chunk)
        except PipelineError as exc:
            lines = [line for line in exc.stderr.strip().splitlines() if line.strip()]
            raise SourceError(redact(lines[-1] if lines else exc.reason)) from None
        finally:
            pipeline.close()
