"""Connections the event loop holds once a thread has answered their request: viewers, event streams.

A ``LoopBody`` (``streaming.bodies``) mostly waits. The thread that ran the view sends
the status line and headers, gives the socket to the loop (``LoopStreams.adopt``) and is
free for the next request; when gthread's main thread finishes that request
(``finish_request``), the connection is ``claim``ed here instead of being closed or kept
alive, and the body drives it from then on through its ``LoopStream``:

    send(data)     one non-blocking send; what the socket cannot take waits for EVENT_WRITE
                   and ``busy`` is true until it has left (an MJPEG viewer then skips frames
                   and catches up with the newest once ``drained``)
    queue(data)    the same, queued behind what is pending (events must not be dropped)
    finish(final)  the last bytes (a closing boundary), the chunked terminator, FIN, close
    abort(reason)  close now, with RST (the client left, or stopped reading)

The socket is watched for reading too: the client's FIN or RST ends the stream at once,
and anything else it sends is read and dropped. A stream whose pending bytes make no
progress for its body's ``send_timeout`` is aborted by a sweep every second: the send
timeout gunicorn does not have. Body bytes count into ``mediasite_bytes_sent{path="loop"}``
once a second, not once per send.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from typing import TYPE_CHECKING

from .bodies import LoopBody
from .event_loop import READ, WRITE, Handler, WorkerLoop, receive
from .metrics import BYTES_SENT

if TYPE_CHECKING:
    from gunicorn.workers.gthread import TConn

logger = logging.getLogger("streaming.loop")

SWEEP = 1.0  # seconds between send-timeout checks (and byte-count flushes)
QUEUE_LIMIT = 1 << 20  # bytes a stream may have waiting before its client counts as not reading
OPEN, FINISHING, DONE = range(3)

_current: LoopStreams | None = None


def current() -> LoopStreams | None:
    """This process's held streams, or None when it is not a splice worker (runserver, tests, another server)."""
    return _current


class LoopStream(Handler):
    """One held connection: the body's bytes go out from here, never blocking."""

    __slots__ = ("streams", "conn", "sock", "body", "chunked", "pending", "since", "sent", "counted", "state")

    def __init__(self, streams: LoopStreams, conn: TConn, body: LoopBody, chunked: bool) -> None:
        self.streams = streams
        self.conn = conn
        self.sock = conn.sock
        self.body = body
        self.chunked = chunked
        self.pending: memoryview | None = None
        self.since = 0.0  # when the pending bytes last moved
        self.sent = 0
        self.counted = 0  # of ``sent``, what /metrics has been told
        self.state = OPEN

    @property
    def loop(self) -> WorkerLoop:
        return self.streams.loop

    @property
    def busy(self) -> bool:
        return self.pending is not None

    @property
    def open(self) -> bool:
        return self.state == OPEN

    def frame(self, data: bytes) -> bytes:
        """``data`` as it goes on the wire here: one chunk under HTTP/1.1 chunked, else as is."""
        return b"%X\r\n%b\r\n" % (len(data), data) if self.chunked and data else data

    def limit_buffer(self, size: int) -> None:
        """Bound the kernel's send buffer (autotuning lets it grow to megabytes per slow client)."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
        except OSError:
            pass

    def send(self, data: bytes) -> bool:
        """Send ``data`` (already framed) unless bytes are pending; False when it was not taken."""
        if self.pending is not None or self.state != OPEN:
            return False
        self._send(data)
        return True

    def queue(self, data: bytes) -> None:
        """Send ``data`` (already framed) after whatever is pending."""
        if self.state == DONE or not data:
            return
        if self.pending is None:
            self._send(data)
        elif len(self.pending) + len(data) > QUEUE_LIMIT:
            self.abort("the client is not reading")
        else:
            self.pending = memoryview(bytes(self.pending) + data)

    def finish(self, final: bytes = b"") -> None:
        """End the stream: ``final`` (framed here), the chunked terminator, then a lingering close."""
        if self.state != OPEN:
            return
        last = self.frame(final) + (b"0\r\n\r\n" if self.chunked else b"")
        self.queue(last)
        if self.state == OPEN:
            self.state = FINISHING
            if self.pending is None:
                self.streams.release(self)

    def abort(self, reason: str) -> None:
        """Close now with RST: nothing more can reach this client."""
        if self.state == DONE:
            return
        logger.debug("held stream closed after %d bytes: %s", self.sent, reason)
        self.streams.release(self, reset=True)

    def ready(self, mask: int) -> None:
        if mask & READ and self.state != DONE:
            self._read()
        if mask & WRITE and self.pending is not None and self.state != DONE:
            self._send(self.pending)

    def failed(self) -> None:
        self.abort("the event loop failed on it")

    def _read(self) -> None:
        if receive(self.sock, 1 << 16) == b"":  # anything else a client sends after its request is dropped
            self.abort("client went away")

    def _send(self, data: bytes | memoryview) -> None:
        try:
            count = self.sock.send(data)
        except BlockingIOError:
            count = 0
        except OSError as exc:
            self.abort(f"client went away ({errno.errorcode.get(exc.errno, exc.errno)})")
            return
        self.sent += count
        was_pending = self.pending is not None
        if count < len(data):
            self.pending = memoryview(data)[count:]
            if count or not was_pending:
                self.since = time.monotonic()
            if not was_pending:
                self.streams.blocked.add(self)
                self.loop.watch(self.sock, READ | WRITE, self)
            return
        if was_pending:
            self.pending = None
            self.streams.blocked.discard(self)
            self.loop.watch(self.sock, READ, self)
            if self.state == FINISHING:
                self.streams.release(self)
            else:
                self.body.drained(self)

    def stalled(self, now: float) -> bool:
        timeout = self.body.send_timeout
        return self.pending is not None and timeout > 0 and now - self.since >= timeout


class LoopStreams:
    """One worker's held streams: handed over by threads, claimed and driven on the loop."""

    def __init__(self, loop: WorkerLoop) -> None:
        global _current
        self.loop = loop
        self.held: set[LoopStream] = set()
        self.blocked: set[LoopStream] = set()
        self._adopted: dict[socket.socket, tuple[LoopBody, bool]] = {}
        self._lock = threading.Lock()
        self._unreported = 0
        loop.call_every(SWEEP, self.sweep)
        loop.on_stop(self.stop_all)
        _current = self

    def adopt(self, sock: socket.socket, body: LoopBody, chunked: bool) -> None:
        """From the request's thread, headers sent: the loop takes ``sock`` when the request is finished."""
        body.on_loop = True
        with self._lock:
            self._adopted[sock] = (body, chunked)

    def claim(self, conn: TConn) -> bool:
        """On the loop, when gthread finishes a request: hold the connection if its body was adopted."""
        with self._lock:
            adopted = self._adopted.pop(conn.sock, None)
        if adopted is None:
            return False
        body, chunked = adopted
        stream = LoopStream(self, conn, body, chunked)
        self.held.add(stream)
        conn.sock.setblocking(False)
        self.loop.watch(conn.sock, READ, stream)
        try:
            body.start(stream)
            if self.loop.stopping:
                body.stop(stream)
        except Exception:
            logger.exception("a held stream failed to start")
            stream.abort("it failed to start")
        return True

    def release(self, stream: LoopStream, *, reset: bool = False) -> None:
        """The stream is over: the connection closed (or lingering), the body ended, its bytes counted."""
        if stream.state == DONE:
            return
        clean = stream.state == FINISHING and stream.pending is None and not reset
        stream.state = DONE
        self.held.discard(stream)
        self.blocked.discard(stream)
        self._unreported += stream.sent - stream.counted
        stream.counted = stream.sent
        if clean:
            self.loop.linger_close(stream.conn)
        else:
            self.loop.close_conn(stream.conn, reset=True)
        try:
            stream.body.end()
        except Exception:
            logger.exception("a held stream's body failed to end")

    def sweep(self) -> None:
        """Every second: drop streams whose client accepted nothing for their send timeout; count bytes."""
        now = time.monotonic()
        for stream in [stream for stream in self.blocked if stream.stalled(now)]:
            logger.info("held stream dropped after %d bytes: the client stopped reading", stream.sent)
            stream.abort("the client stopped reading")
        sent = self._unreported
        for stream in self.held:
            sent += stream.sent - stream.counted
            stream.counted = stream.sent
        if sent:
            BYTES_SENT.labels("loop").inc(sent)
            self._unreported = 0

    def stop_all(self) -> None:
        """The worker is stopping: every body finishes its stream (the closing boundary, the terminator)."""
        for stream in list(self.held):
            try:
                stream.body.stop(stream)
            except Exception:
                logger.exception("a held stream failed to stop")
                stream.abort("it failed to stop")
