"""MJPEG viewers held by the worker's event loop: one fan-out per camera per worker, no thread per viewer.

A viewer is admitted and gets its first frame in the request's thread as before
(``streaming.cameras.viewing``); then its socket goes to the loop (``MjpegBody``, a
``LoopBody``). The camera's reader thread (``fanout.Feed``) tells this worker's
``LoopFanout`` of each new frame with one wake-up of the loop, and the loop hands the
same bytes object (the part, chunk-framed once per frame for HTTP/1.1) to every viewer,
one non-blocking send each. A viewer whose socket still holds an earlier frame is
skipped; when its socket drains it gets the newest frame at once, so a slow viewer
holds at most one frame and never delays the others. ``?fps=`` is kept by skipping
frames until the viewer is due.

The stream ends with the closing boundary when the source fails, when no frame came
for the silence limit, and when the worker stops; ``CAMERAS_SEND_TIMEOUT`` is the held
stream's send timeout. Under any other server the same body is read like the
generator it always was (``mjpeg.MjpegStream``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

from ..bodies import LoopBody
from ..event_loop import WorkerLoop
from ..loop_streams import LoopStream
from .conf import conf
from .fanout import Delivery, Feed, Viewer
from .mjpeg import MjpegStream, encode_part

SILENCE_CHECK = 1.0  # seconds between looks for a camera that stopped sending
BUFFERED_FRAMES = 2  # frames a viewer's socket buffers (the kernel doubles what it is told)
MIN_BUFFER, MAX_BUFFER = 64 << 10, 4 << 20

# This worker's fan-outs, one per camera with viewers on the loop; used on the loop thread only.
_fanouts: dict[Feed, LoopFanout] = {}


class LoopFanout:
    """One camera's viewers on this worker's loop: each new frame goes to all of them from here."""

    def __init__(self, feed: Feed, loop: WorkerLoop, silence: float) -> None:
        self.feed = feed
        self.loop = loop
        self.silence = silence
        self.bodies: dict[MjpegBody, None] = {}  # in arrival order, so the same viewers always go first
        self.latest: Delivery | None = None
        self.chunk = b""
        self.latest_at = time.monotonic()
        self.scheduled = False
        feed.listen(self.wake)
        self.timer = loop.call_every(SILENCE_CHECK, self.check_silence)

    @classmethod
    def join(cls, body: MjpegBody, loop: WorkerLoop) -> LoopFanout:
        fanout = _fanouts.get(body.feed)
        if fanout is None:
            fanout = _fanouts[body.feed] = cls(body.feed, loop, body.silence)
        fanout.bodies[body] = None
        return fanout

    def leave(self, body: MjpegBody) -> None:
        self.bodies.pop(body, None)
        if not self.bodies and _fanouts.get(self.feed) is self:
            del _fanouts[self.feed]
            self.feed.unlisten(self.wake)
            self.timer.cancel()

    def wake(self) -> None:
        """From the reader thread: a frame (or a failure) arrived; one wake-up of the loop however many come."""
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon_threadsafe(self.fan_out)

    def current(self) -> Delivery | None:
        """The newest frame, its chunk framing made once for every HTTP/1.1 viewer."""
        latest = self.feed.latest
        if latest is not None and latest is not self.latest:
            self.latest = latest
            self.chunk = b"%X\r\n%b\r\n" % (len(latest.part), latest.part)
            self.latest_at = time.monotonic()
        return self.latest

    def fan_out(self) -> None:
        """On the loop: the newest frame to every viewer that can take it now; a failure ends them all."""
        self.scheduled = False
        failures = self.feed.failure[0]
        latest = self.current()
        now = time.monotonic()
        for body in tuple(self.bodies):
            if failures > body.viewer.failures:
                body.finish()
            else:
                body.offer(latest, now)

    def check_silence(self) -> None:
        if time.monotonic() - self.latest_at > self.silence:
            for body in tuple(self.bodies):
                body.finish()


class MjpegBody(LoopBody):
    """One viewer's stream: held by the event loop under the splice worker, a generator elsewhere."""

    def __init__(
        self, feed: Feed, viewer: Viewer, first: bytes, *, max_fps: float, silence: float,
        on_close: Callable[[], None],
    ) -> None:
        self.feed = feed
        self.viewer = viewer
        self.silence = silence
        self.interval = 1.0 / max_fps if max_fps else 0.0
        self.next_due = 0.0
        self.first = first
        self.stream: LoopStream | None = None
        self.fanout: LoopFanout | None = None
        self.fallback = MjpegStream(partial(feed.next_part, viewer), on_close, first=first, max_fps=max_fps,
                                    silence=silence)
        self.send_timeout = float(conf.CAMERAS_SEND_TIMEOUT)

    def read(self, size: int = -1) -> bytes:
        """Off the loop: the next part (blocking until there is one), b"" after the closing boundary."""
        return next(self.fallback, b"")

    def start(self, stream: LoopStream) -> None:
        self.stream = stream
        self.feed.hand_to_loop(self.viewer)
        self.fanout = LoopFanout.join(self, stream.loop)
        # A few frames of kernel buffer, no more: past that a slow viewer skips to the newest frame
        # instead of watching seconds-old ones (and 1000 slow viewers cannot pin gigabytes).
        stream.limit_buffer(min(max(BUFFERED_FRAMES * len(self.first), MIN_BUFFER), MAX_BUFFER))
        now = time.monotonic()
        self._due(now)
        stream.send(stream.frame(self.first))
        self.offer(self.fanout.current(), now)  # a newer frame may have come while the thread let go

    def offer(self, delivery: Delivery | None, now: float) -> None:
        """Send ``delivery`` unless this viewer has it, is still sending an older one, or is not due."""
        stream = self.stream
        if delivery is None or delivery is self.viewer.last or stream.pending is not None:
            return
        if self.interval:
            if now < self.next_due:
                return
            self._due(now)
        self.viewer.last = delivery
        stream.send(self.fanout.chunk if stream.chunked else delivery.part)

    def _due(self, now: float) -> None:
        """The next moment this viewer may get a frame: one interval on, without drifting or saving up."""
        if self.interval:
            late = now - self.next_due >= self.interval
            self.next_due = now + self.interval if late else self.next_due + self.interval

    def drained(self, stream: LoopStream) -> None:
        self.offer(self.fanout.current(), time.monotonic())

    def finish(self) -> None:
        if self.stream is not None:
            self.stream.finish(encode_part(None))

    def stop(self, stream: LoopStream) -> None:
        self.finish()

    def end(self) -> None:
        if self.fanout is not None:
            self.fanout.leave(self)
        self.fallback.close()
