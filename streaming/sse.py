"""Server-Sent Events: the framing of an event stream and the response that carries it.

All framing goes through one method, ``EventStream.frame`` (as gunicorn keeps body framing
in ``_emit_body``), so every event, ``retry:`` hint and heartbeat comment is built the same
way: field lines, a blank line at the end, newlines inside data split into ``data:`` lines.

The response is a ``StreamingHttpResponse`` over a *sync* generator: under WSGI an async
generator is consumed whole before the first byte leaves. It says ``no-cache`` and
``X-Accel-Buffering: no`` so proxies pass each event at once, and carries
``Content-Encoding: identity`` because Django's GZipMiddleware compresses a stream into
blocks it releases only when they fill (it skips responses that already name an encoding).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.http import StreamingHttpResponse

CONTENT_TYPE = "text/event-stream; charset=utf-8"


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

    def heartbeat(self) -> bytes:
        """A comment line: ignored by clients, but it keeps proxies and load balancers from closing."""
        return self.frame(comment="heartbeat")


def last_event_id(meta: dict[str, Any]) -> str | None:
    """The ``Last-Event-ID`` header a reconnecting EventSource sends, if any."""
    return meta.get("HTTP_LAST_EVENT_ID") or None


class EventStreamResponse(StreamingHttpResponse):
    """A text/event-stream response over a sync iterable of framed bytes."""

    def __init__(self, events: Iterable[bytes], **kwargs: Any) -> None:
        super().__init__(events, content_type=CONTENT_TYPE, **kwargs)
        self["Cache-Control"] = "no-cache"
        self["X-Accel-Buffering"] = "no"
        self["Content-Encoding"] = "identity"

