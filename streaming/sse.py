"""Server-Sent Events: the framing of an event stream, the body that carries it, and its response.

All framing goes through one method, ``EventStream.frame`` (as gunicorn keeps body framing
in ``_emit_body``), so every event, ``retry:`` hint and heartbeat comment is built the same
way: field lines, a blank line at the end, newlines inside data split into ``data:`` lines.

An event stream mostly waits for something to happen, so its body is a ``LoopBody``
(``EventStreamBody``): its ``poll()`` says what happened since it was last asked. Under the
splice worker the event loop holds the socket and sends the events and the heartbeats,
while the polls (which may block: the render events read Redis and the database) run on
the worker's threads, one round for all of its streams at a time (``EventPolls``); no
stream has a thread of its own. Anywhere else the body is read like the generator it
replaces: poll, send, sleep, in the request's thread.

The response says ``no-cache`` and ``X-Accel-Buffering: no`` so proxies pass each event at
once, and carries ``Content-Encoding: identity`` because Django's GZipMiddleware compresses
a stream into blocks it releases only when they fill (it skips responses that already name
an encoding).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from functools import partial
from typing import Any

from .bodies import LoopBody
from .conf import conf
from .event_loop import WorkerLoop
from .loop_streams import LoopStream
from .responses import LoopResponse

logger = logging.getLogger("streaming.sse")

CONTENT_TYPE = "text/event-stream; charset=utf-8"
TICK = 0.1  # seconds between the loop's looks at its event streams (polls due, heartbeats due)

# What a poll returns: framed events to send now, and whether the stream ends after them.
Poll = Callable[[], tuple[list[bytes], bool]]


class EventStream:
    """Frames events for one stream and decides when an idle stream needs a heartbeat."""

    def __init__(self, heartbeat_seconds: float = 15.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.heartbeat_seconds = heartbeat_seconds
        self._clock = clock
        self._last_sent = clock()

    def frame(
        self,
        data: Any = None,
        *,
        event: str | None = None,
        id: str | int | None = None,  # noqa: A002  (the SSE field is called id)
        retry_ms: int | None = None,
        comment: str | None = None,
    ) -> bytes:
        """One block of the stream. ``data`` that is not a str is sent as compact JSON."""
        lines: list[str] = []
        if comment is not None:
            lines.extend(f": {line}" if line else ":" for line in comment.split("\n"))
        if retry_ms is not None:
            lines.append(f"retry: {int(retry_ms)}")
        if id is not None:
            text = str(id)
            if "\n" in text or "\r" in text or "\0" in text:
                raise ValueError("an SSE id cannot contain newlines or NUL")
            lines.append(f"id: {text}")
        if event is not None:
            if "\n" in event or "\r" in event:
                raise ValueError("an SSE event name cannot contain newlines")
            lines.append(f"event: {event}")
        if data is not None:
            text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
            lines.extend(f"data: {line}" for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
        self._last_sent = self._clock()
        return ("\n".join(lines) + "\n\n").encode("utf-8")

    def heartbeat_due(self) -> bool:
        return self._clock() - self._last_sent >= self.heartbeat_seconds

    def sent_now(self) -> None:
        """Frames made elsewhere just went out: the next heartbeat is due a whole interval from now."""
        self._last_sent = self._clock()

    def heartbeat(self) -> bytes:
        """A comment line: ignored by clients, but it keeps proxies and load balancers from closing."""
        return self.frame(comment="heartbeat")


def last_event_id(meta: dict[str, Any]) -> str | None:
    """The ``Last-Event-ID`` header a reconnecting EventSource sends, if any."""
    return meta.get("HTTP_LAST_EVENT_ID") or None


class EventStreamBody(LoopBody):
    """One event stream: ``first`` (a ``retry:`` hint), then what ``poll()`` finds every ``interval``
    seconds, with a heartbeat comment after ``heartbeat`` seconds of silence, until a poll says it ended."""

    def __init__(self, poll: Poll, *, first: bytes, interval: float, heartbeat: float) -> None:
        self.poll = poll
        self.first = first
        self.interval = interval
        self.framer = EventStream(heartbeat_seconds=heartbeat)
        self.send_timeout = float(conf.STALL_TIMEOUT)
        self.stream: LoopStream | None = None
        self.polls: EventPolls | None = None
        self.next_poll = 0.0
        self.last_sent = 0.0
        self._blocks: Iterator[bytes] | None = None

    # --- off the loop: the generator it always was ---------------------------------

    def read(self, size: int = -1) -> bytes:
        if self._blocks is None:
            self._blocks = self._generate()
        return next(self._blocks, b"")

    def _generate(self) -> Iterator[bytes]:
        yield self.first
        while True:
            frames, finished = self.poll()
            yield from frames
            if finished:
                return
            if frames:
                self.framer.sent_now()
            elif self.framer.heartbeat_due():
                yield self.framer.heartbeat()
            time.sleep(self.interval)

    # --- on the loop -------------------------------------------------------------------

    def start(self, stream: LoopStream) -> None:
        self.stream = stream
        stream.queue(stream.frame(self.first))
        self.last_sent = time.monotonic()
        self.polls = EventPolls.join(self, stream.loop)

    def polled(self) -> tuple[list[bytes], bool]:
        """On a worker thread: ``poll()``, a failing one ending the stream (logged) instead of the round."""
        try:
            return self.poll()
        except Exception:
            logger.exception("an event stream's poll failed; the stream ends")
            return [], True

    def deliver(self, frames: list[bytes], finished: bool) -> None:
        """On the loop: a poll's events, or the end of the stream."""
        stream = self.stream
        if stream is None or not stream.open:
            return
        if frames:
            stream.queue(b"".join(stream.frame(frame) for frame in frames))
            self.last_sent = time.monotonic()
        if finished:
            stream.finish()

    def keep_alive(self, now: float) -> None:
        if self.stream is not None and self.stream.open and now - self.last_sent >= self.framer.heartbeat_seconds:
            self.stream.queue(self.stream.frame(self.framer.heartbeat()))
            self.last_sent = now

    def stop(self, stream: LoopStream) -> None:
        stream.finish()  # EventSource reconnects (with Last-Event-ID) to a worker that is not stopping

    def end(self) -> None:
        if self.polls is not None:
            self.polls.leave(self)


class EventPolls:
    """This worker's event streams on the loop: their polls, one round on a thread at a time, and heartbeats."""

    current: EventPolls | None = None

    def __init__(self, loop: WorkerLoop) -> None:
        self.loop = loop
        self.bodies: dict[EventStreamBody, None] = {}
        self.polling = False
        self.timer = loop.call_every(TICK, self.tick)

    @classmethod
    def join(cls, body: EventStreamBody, loop: WorkerLoop) -> EventPolls:
        if cls.current is None or cls.current.loop is not loop:
            cls.current = cls(loop)
        polls = cls.current
        polls.bodies[body] = None
        polls.tick()  # the first poll at once
        return polls

    def leave(self, body: EventStreamBody) -> None:
        self.bodies.pop(body, None)
        if not self.bodies and EventPolls.current is self:
            EventPolls.current = None
            self.timer.cancel()

    def tick(self) -> None:
        """Heartbeats that are due, then one round of the polls that are due (unless one is running)."""
        now = time.monotonic()
        for body in self.bodies:
            body.keep_alive(now)
        if self.polling:
            return
        due = [body for body in self.bodies if body.next_poll <= now and body.stream is not None and body.stream.open]
        if not due:
            return
        for body in due:
            body.next_poll = now + body.interval
        self.polling = True
        self.loop.run_in_thread(partial(poll_round, due), self.polled)

    def polled(self, future: Future) -> None:
        self.polling = False
        if future.cancelled() or future.exception() is not None:
            return
        for body, (frames, finished) in future.result():
            body.deliver(frames, finished)


def poll_round(bodies: list[EventStreamBody]) -> list[tuple[EventStreamBody, tuple[list[bytes], bool]]]:
    """On a worker thread: every due stream's poll, one after the other."""
    return [(body, body.polled()) for body in bodies]


class EventStreamResponse(LoopResponse):
    """A text/event-stream response over an ``EventStreamBody``."""

    def __init__(self, body: EventStreamBody, **kwargs: Any) -> None:
        super().__init__(body, content_type=CONTENT_TYPE, **kwargs)
        self["Cache-Control"] = "no-cache"
        self["Content-Encoding"] = "identity"
