"""The multipart/x-mixed-replace body of a camera stream.

All framing happens in ``encode_part``: each part carries its own Content-Length
(clients need not scan for the boundary inside JPEG data), the relay's frame
number and the capture time (for ordering and lag checks), and the stream ends
with the closing delimiter. A part is built once per frame per worker and the same
bytes object goes to every viewer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .bus import Frame

BOUNDARY = "frame"
CONTENT_TYPE = f"multipart/x-mixed-replace; boundary={BOUNDARY}"
WAIT_STEP = 1.0  # every wait is bounded, so a viewer notices shutdown and silence


def encode_part(frame: Frame | None) -> bytes:
    """One frame as a part, or (None) the closing delimiter that ends the stream cleanly."""
    if frame is None:
        return b"--" + BOUNDARY.encode() + b"--\r\n"
    head = (
        b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\nX-Frame-Seq: %d\r\nX-Frame-Time: %.6f\r\n\r\n"
        % (BOUNDARY.encode(), len(frame.jpeg), frame.seq, frame.captured)
    )
    return head + frame.jpeg + b"\r\n"


class MjpegStream:
    """A WSGI body: the newest part each time the viewer can take one, until failure, silence or close.

    ``next_part(timeout)`` returns a part, a failure text (the stream ends), or None
    on timeout. ``on_close`` detaches the viewer; gunicorn calls ``close()`` from a
    ``finally`` when the client goes away.
    """

    def __init__(
        self,
        next_part: Callable[[float], bytes | str | None],
        on_close: Callable[[], None],
        *,
        first: bytes | None = None,
        max_fps: float = 0.0,
        silence: float = 15.0,
    ) -> None:
        self._next_part = next_part
        self._on_close = on_close
        self._pending = first
        self._interval = 1.0 / max_fps if max_fps else 0.0
        self._silence = silence
        self._last_sent = 0.0
        self._done = False
        self._closed = False
        self.parts_sent = 0

    def __iter__(self) -> MjpegStream:
        return self

    def __next__(self) -> bytes:
        if self._done or self._closed:
            raise StopIteration
        if self._pending is not None:
            part, self._pending = self._pending, None
            return self._sent(part)
        if self._interval:
            delay = self._last_sent + self._interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        quiet_since = time.monotonic()
        while True:
            item = self._next_part(WAIT_STEP)
            if isinstance(item, bytes):
                return self._sent(item)
            if isinstance(item, str) or not threading.main_thread().is_alive():
                break  # the source failed, or the worker is shutting down
            if time.monotonic() - quiet_since > self._silence:
                break
        self._done = True
        return encode_part(None)

    def _sent(self, part: bytes) -> bytes:
        self._last_sent = time.monotonic()
        self.parts_sent += 1
        return part

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._on_close()
