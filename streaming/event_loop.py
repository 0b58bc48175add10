"""The splice worker's event loop as the rest of ``streaming`` sees it: sockets, timers, threads.

gthread's main thread runs one selector (epoll) loop: it accepts, watches kept-alive
connections and runs the callbacks threads queue for it. ``WorkerLoop`` makes that loop
usable by the parts that hold connections which only wait (``loop_heads``: request
heads still arriving; ``loop_streams``: MJPEG viewers and event streams): handlers that
are told which events fired, timers, "call this on the loop" from any thread, and "run
this on a thread, then hand me the result on the loop".

What runs on the loop must never block: non-blocking sends and receives, dictionary
work, locks held for microseconds. Anything that may wait on the network or a database
(Redis, the ORM) goes to the worker's thread pool through ``run_in_thread``. A handler
or timer that raises is logged and its connection closed; the loop itself goes on.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import logging
import selectors
import socket
import struct
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gunicorn.workers.gthread import TConn, ThreadWorker

logger = logging.getLogger("streaming.loop")

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
LINGER = 2.0  # seconds a finished connection waits for the client's FIN, as gunicorn's close_graceful
LINGER_DRAIN = 1 << 16  # bytes read and dropped while lingering before giving up on the client
RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST and frees the socket at once
COMPACT_AT = 4096  # cancelled timers are swept out of the heap once it holds this many entries


def receive(sock: socket.socket, size: int) -> bytes | None:
    """One non-blocking recv: the bytes, b"" when the peer is gone (FIN, RST, any error), None for nothing yet."""
    try:
        return sock.recv(size)
    except BlockingIOError:
        return None
    except OSError:
        return b""


class Handler(ABC):
    """Something the loop watches a socket for; ``ready`` gets the events that fired."""

    @abstractmethod
    def ready(self, mask: int) -> None:
        """Handle the events in ``mask`` (selectors.EVENT_READ / EVENT_WRITE) without blocking."""

    def failed(self) -> None:  # noqa: B027  (optional: most handlers own nothing more than the loop closes)
        """``ready`` raised (a bug): let go of the socket so the loop does not spin on it."""


class Timer:
    """A callback due at ``when`` (time.monotonic()); ``cancel`` before that and it never runs."""

    __slots__ = ("when", "callback", "cancelled", "every")

    def __init__(self, when: float, callback: Callable[[], Any], every: float = 0.0) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False
        self.every = every

    def cancel(self) -> None:
        self.cancelled = True


class WorkerLoop:
    """One gthread worker's event loop: its poller, method queue and thread pool, plus timers."""

    def __init__(self, worker: ThreadWorker) -> None:
        self.worker = worker
        self.stopping = False
        self._timers: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()
        self._compact_at = COMPACT_AT
        self._on_stop: list[Callable[[], None]] = []

    # --- sockets ----------------------------------------------------------------

    def watch(self, sock: socket.socket, mask: int, handler: Handler) -> None:
        """Watch ``sock`` for ``mask`` on behalf of ``handler`` (registered or not before)."""
        poller = self.worker.poller
        try:
            poller.modify(sock, mask, handler)
        except KeyError:
            poller.register(sock, mask, handler)

    def unwatch(self, sock: socket.socket) -> None:
        try:
            self.worker.poller.unregister(sock)
        except (KeyError, ValueError, OSError):
            pass

    def close_conn(self, conn: TConn, *, reset: bool = False) -> None:
        """Close a connection the loop holds; with ``reset`` at once with RST (a client that stopped reading)."""
        self.unwatch(conn.sock)
        if reset:
            try:
                conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
            except OSError:
                pass
        conn.close()
        self.worker.nr_conns -= 1

    def linger_close(self, conn: TConn) -> None:
        """Close after the last byte without losing it: FIN now, the client's FIN (or LINGER s), then close."""
        LingeringClose(self, conn)

    # --- timers and threads -------------------------------------------------------

    def call_later(self, delay: float, callback: Callable[[], Any]) -> Timer:
        return self._push(Timer(time.monotonic() + delay, callback))

    def call_every(self, seconds: float, callback: Callable[[], Any]) -> Timer:
        """Run ``callback`` every ``seconds`` until the returned timer is cancelled."""
        return self._push(Timer(time.monotonic() + seconds, callback, every=seconds))

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any) -> None:
        """From any thread: run ``callback(*args)`` on the loop (gthread's method queue wakes it)."""
        self.worker.method_queue.defer(callback, *args)

    def run_in_thread(self, work: Callable[[], Any], done: Callable[[Future], None]) -> None:
        """``work()`` on a thread of the worker's pool, then ``done(future)`` back on the loop."""
        future = self.worker.tpool.submit(work)
        future.add_done_callback(lambda finished: self.call_soon_threadsafe(done, finished))

    def on_stop(self, callback: Callable[[], None]) -> None:
        """``callback()`` on the loop once, when the worker begins a graceful stop."""
        self._on_stop.append(callback)

    # --- the loop itself ------------------------------------------------------------

    def dispatch(self, timeout: float) -> None:
        """One turn: wait for events (at most until the next timer), dispatch them, run the due timers."""
        worker = self.worker
        if not worker.alive and not self.stopping:
            self._stop()
        if self._timers:
            timeout = max(0.0, min(timeout, self._timers[0][0] - time.monotonic()))
        try:
            events = worker.poller.select(timeout)
        except OSError as exc:
            if exc.errno != errno.EINTR:
                raise
            events = []
        for key, mask in events:
            target = key.data
            if isinstance(target, Handler):
                self._guarded(target.ready, mask, handler=target)
            else:
                target(key.fileobj)  # gthread's own callbacks
        self._run_timers()

    def _stop(self) -> None:
        self.stopping = True
        for callback in self._on_stop:
            self._guarded(callback)

    def _push(self, timer: Timer) -> Timer:
        heapq.heappush(self._timers, (timer.when, next(self._order), timer))
        if len(self._timers) >= self._compact_at:
            self._timers = [entry for entry in self._timers if not entry[2].cancelled]
            heapq.heapify(self._timers)
            self._compact_at = max(COMPACT_AT, 2 * len(self._timers))
        return timer

    def _run_timers(self) -> None:
        now = time.monotonic()
        timers = self._timers
        while timers and timers[0][0] <= now:
            timer = heapq.heappop(timers)[2]
            if timer.cancelled:
                continue
            self._guarded(timer.callback)
            if timer.every and not timer.cancelled:
                timer.when = max(timer.when + timer.every, now)
                self._push(timer)

    def _guarded(self, call: Callable[..., Any], *args: Any, handler: Handler | None = None) -> None:
        try:
            call(*args)
        except Exception:
            logger.exception("event loop: %r failed", call)
            if handler is not None:
                try:
                    handler.failed()
                except Exception:
                    logger.exception("event loop: %r could not let go of its socket", handler)


class LingeringClose(Handler):
    """The end of a connection on the loop: half-close, read and drop until the client's FIN, close.

    Closing at once while the client's bytes sit unread in the receive queue makes the
    kernel send RST, which can destroy the last response bytes before the client reads
    them. gunicorn's ``close_graceful`` avoids that by blocking for up to 2 s; this waits
    on the loop instead.
    """

    __slots__ = ("loop", "conn", "drained", "timer", "closed")

    def __init__(self, loop: WorkerLoop, conn: TConn) -> None:
        self.loop = loop
        self.conn = conn
        self.drained = 0
        self.closed = False
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.timer = None
            self.finish()
            return
        loop.watch(conn.sock, READ, self)
        self.timer = loop.call_later(LINGER, self.finish)

    def ready(self, mask: int) -> None:
        data = None if self.closed else receive(self.conn.sock, LINGER_DRAIN)
        if data is None:
            return
        self.drained += len(data)
        if not data or self.drained >= LINGER_DRAIN:
            self.finish()

    def failed(self) -> None:
        self.finish()

    def finish(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        self.loop.close_conn(self.conn)
