"""A gthread worker whose responses splice pipe bodies straight into the client socket.

gunicorn hands a ``wsgi.file_wrapper`` body to ``Response.write_file()``, which
tries ``sendfile`` (refused for pipes: ESPIPE) and then copies the body through
Python in small blocks. ``SpliceResponse`` adds a path in front of that, chosen by
the body's kind (``streaming.bodies``): for a ``PipeBody`` (our ``Pipeline`` and
``TeedPipeline``) the bytes go from the pipe to the socket with splice(2) and
never enter Python. Framing stays correct:

- HTTP/1.1 without Content-Length: chunked, each chunk sized by FIONREAD and then
  exactly that many bytes spliced;
- a known Content-Length: exactly that many bytes, the response is aborted if the
  pipe ends early;
- HTTP/1.0: close-delimited.

When the pipe body carries a ``fill`` (a cache file being written beside the stream,
see ``streaming.fill``), each chunk is first tee(2)'d into a private pipe and
spliced from there into the file, so the cache fill is zero-copy too.

Pipes that cannot be spliced (TLS, splice turned off) are copied in the body's
block size (1 MiB for ``PipeResponse``) under the same timeouts and endings; a
``FollowedBody`` (another request's render as it grows) is read and sent the same
way; a ``FileBody`` and anything else keep gunicorn's own path (sendfile); HTTP/2
never reaches this class.

Every wait is bounded by ``STREAMING_STALL_TIMEOUT`` (and a ``Pipeline``'s own
deadline): gunicorn has no send timeout, so without it a client that stops
reading would pin a thread forever. A client that leaves, a stall or a failing
tool ends the response with one log line: the body is closed at once (killing
and reaping the tool's process group), the connection is closed, and no
chunked terminator is sent, so the client can tell the body is incomplete.

Small file responses the app marked replayable (a cached thumbnail, a small
original) are offered to ``streaming.replay`` (what is kept, and why that is
safe) and answered again by ``streaming.replay_loop`` from the event loop when the
same request comes back on a kept-alive connection, without a thread or the app.

Threads are for work; the event loop holds what only waits (``streaming.event_loop``).
Request heads are read there and a thread gets a connection only once its head is
whole (``streaming.loop_heads``: the header timeout, 408/414/431). A ``LoopBody`` (an
MJPEG viewer, an event stream) has its headers sent by the request's thread and its
socket then handed to the loop, which drives it to the end (``streaming.loop_streams``);
elsewhere (TLS, another worker, runserver) it is read like a generator.

The class name must not end in ``SyncWorker`` (gunicorn swaps those for gthread),
and the Response is installed in ``init_process()`` because
``gunicorn.http.wsgi.create()`` looks the module-level ``Response`` up on every
request.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent import futures

from gunicorn.http import wsgi
from gunicorn.workers.gthread import TConn, ThreadWorker

from . import loop_streams, replay
from . import splice as splicing
from .bodies import Body, FileBody, FollowedBody, LoopBody, PipeBody, SpliceFill
from .conf import conf
from .event_loop import WorkerLoop
from .follow import FollowAborted
from .loop_heads import HeadReader
from .metrics import BYTES_SENT
from .pipeline import F_SETPIPE_SZ, PIPE_SIZE, PipelineError
from .replay_loop import LoopReplies

logger = logging.getLogger("streaming.splice")

CLIENT_GONE = (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ESHUTDOWN)


class StreamAborted(Exception):
    """The body could not be sent whole; carries the one line that gets logged."""


def stall_timeout() -> float:
    """STREAMING_STALL_TIMEOUT: read per response, so a test's settings override applies at once."""
    return float(conf.STALL_TIMEOUT)


def wait_for_output(body: PipeBody, stall: float) -> None:
    """Until the pipe is readable (data or its end), for at most ``stall`` s and the pipeline's own deadline."""
    deadline = min(time.monotonic() + stall, body.deadline)
    try:
        splicing.wait_for(body.fileno(), select.POLLIN, deadline)
    except splicing.Stalled:
        raise StreamAborted("the tool produced nothing in time") from None


class SpliceResponse(wsgi.Response):
    """gunicorn's HTTP/1.x Response plus a splice path for pipe bodies."""

    aborted = False
    handed_off = False  # the event loop holds the socket now (a LoopBody): close() must not touch it
    body_path = "copy"  # how the body left: splice, sendfile or copy (Python writes), for /metrics
    sendfile_bytes = 0  # gunicorn's sendfile does not count into ``sent``

    def sendfile(self, respiter: wsgi.FileWrapper) -> bool:
        sent = super().sendfile(respiter)
        if sent and not self._omits_body:
            self.body_path, self.sendfile_bytes = "sendfile", self.response_length or 0
        return sent

    def write_file(self, respiter: wsgi.FileWrapper) -> None:
        """Send the body the way its kind calls for (``streaming.bodies``); other objects go to gunicorn."""
        body = respiter.filelike
        if isinstance(body, PipeBody):
            splice = self.splice_for()
            if splice is None:
                self.send_body(body, lambda stall: self.copy_blocks(body, respiter.blksize, stall))
            else:
                self.body_path = "splice"
                self.send_body(body, lambda stall: self.splice_body(body, splice, stall))
        elif isinstance(body, FollowedBody):
            self.send_body(body, lambda stall: self.copy_growing(body))
        elif isinstance(body, LoopBody):
            if not self.hand_to_loop(body):
                super().write_file(respiter)  # read like a generator, this thread waiting with it
        else:
            if isinstance(body, FileBody) and body.replay_source is not None:
                replay.offer(self, body)
            super().write_file(respiter)  # regular files: gunicorn's own path (sendfile where it is on)

    def hand_to_loop(self, body: LoopBody) -> bool:
        """The headers from this thread, then the socket to the event loop; False where it cannot hold it."""
        streams = loop_streams.current()
        if streams is None or self.cfg.is_ssl or isinstance(self.sock, ssl.SSLSocket):
            return False
        self.force_close()  # the loop closes the connection when the body ends
        self.send_headers()
        if not self._omits_body:
            streams.adopt(self.sock, body, self.chunked)
            self.handed_off = True
        return True

    def send_body(self, filelike: Body, send: Callable[[float], None]) -> None:
        """Headers, then ``send(stall)``; every way a body can fail ends the response with one log line."""
        stall = stall_timeout()
        self.send_headers()
        if self._omits_body:
            return
        self.sock.settimeout(stall)  # bounds every sendall; splice waits are bounded in streaming.splice
        try:
            send(stall)
        except (StreamAborted, FollowAborted) as exc:
            self.abort(filelike, str(exc))
        except TimeoutError:
            self.abort(filelike, "the client stopped reading")
        except PipelineError as exc:
            self.abort(filelike, f"the tool failed: {exc.reason}")
        except OSError as exc:
            if exc.errno not in CLIENT_GONE:
                raise
            self.abort(filelike, f"client went away ({errno.errorcode.get(exc.errno, exc.errno)})")
        finally:
            self.sock.settimeout(None)

    def copy_growing(self, filelike: FollowedBody) -> None:
        """Another request's render as it grows (chunked by gunicorn, since the length is unknown)."""
        while chunk := filelike.read(PIPE_SIZE):
            self.write(chunk)

    def copy_blocks(self, filelike: PipeBody, block_size: int, stall: float) -> None:
        """Copy a pipe in ``block_size`` reads (gunicorn frames each write), waits bounded like splice's."""
        while True:
            wait_for_output(filelike, stall)
            chunk = filelike.read(block_size)
            if not chunk:
                break
            self.write(chunk)
        if self.response_length is not None and self.sent < self.response_length:
            raise StreamAborted(f"the body ended {self.response_length - self.sent} bytes short")

    def splice_for(self) -> splicing.SpliceCall | None:
        """The splice binding to use, or None to copy (TLS: the kernel cannot splice into it)."""
        if self.cfg.is_ssl or isinstance(self.sock, ssl.SSLSocket):
            return None
        return splicing.splice_function()

    def abort(self, filelike: Body, reason: str) -> None:
        """End the response here: one log line, the connection closed, the body (and its tool) closed now."""
        logger.info("stream ended early after %d bytes: %s", self.sent, reason)
        self.aborted = True
        self.force_close()
        filelike.close()

    def close(self) -> None:
        """No chunked terminator after an abort: the client must see that the body is incomplete."""
        if self.sent or self.sendfile_bytes:
            BYTES_SENT.labels(self.body_path).inc(self.sent + self.sendfile_bytes)
        if self.aborted or self.handed_off:
            return
        super().close()

    def splice_body(self, filelike: PipeBody, splice: splicing.SpliceCall, stall: float) -> None:
        """The one place spliced bodies are framed: chunked, fixed length or close-delimited."""
        src = filelike.fileno()
        sock_fd = self.sock.fileno()
        fill = filelike.fill
        tee = TeeIntoFile(fill, stall) if fill is not None and splicing.tee_available() else None
        try:
            while True:
                wanted = None if self.response_length is None else self.response_length - self.sent
                if wanted == 0:
                    break
                wait_for_output(filelike, stall)
                count = splicing.available(src)
                if count == 0:
                    break
                if wanted is not None:
                    count = min(count, wanted)
                last = wanted is not None and count == wanted
                if self.chunked:
                    self.sock.sendall(b"%X\r\n" % count, socket.MSG_MORE)
                flags = splicing.SPLICE_F_MOVE | (0 if last else splicing.SPLICE_F_MORE)
                try:
                    if tee is not None:
                        moved = tee.splice(splice, src, sock_fd, count, flags)
                    else:
                        moved = splicing.splice_exactly(splice, src, sock_fd, count, stall_timeout=stall, flags=flags)
                except splicing.Stalled:
                    raise StreamAborted("the client stopped reading") from None
                self.sent += moved
                if self.chunked:
                    self.sock.sendall(b"\r\n")
                if moved < count:
                    break
        finally:
            if tee is not None:
                tee.close()
        self.finish_body(filelike)
        logger.debug("spliced %d bytes with %s (%s)%s", self.sent, splice.__name__, self.framing(),
                     " and tee'd them into a file" if tee is not None else "")

    def framing(self) -> str:
        """How this body is delimited, for the debug line that tests and operators read."""
        if self.chunked:
            return "chunked"
        return "content-length" if self.response_length is not None else "close-delimited"

    def finish_body(self, filelike: PipeBody) -> None:
        """At the end of the pipe: the tool must have succeeded and the length must be whole."""
        if self.response_length is not None and self.sent == self.response_length:
            wait_for_output(filelike, stall_timeout())  # its end, or more bytes than announced
            if splicing.available(filelike.fileno()):
                raise StreamAborted("the tool wrote more than its Content-Length")
        try:
            filelike.finish()
        except Exception as exc:  # any failure of the tool ends the stream the same way
            raise StreamAborted(f"the tool failed: {exc}") from None
        if self.response_length is not None and self.sent < self.response_length:
            raise StreamAborted(f"the body ended {self.response_length - self.sent} bytes short")


class TeeIntoFile:
    """tee(2) each chunk into a private pipe and send that copy, then splice the chunk itself into the file.

    In that order the file only ever holds bytes taken from the tool's pipe: if
    the client goes away mid-chunk, the chunk is still in the pipe, and a render
    finished for followers (``streaming.fill``) writes it once, not twice.
    """

    def __init__(self, fill: SpliceFill, stall: float) -> None:
        self.fill = fill
        self.stall = stall
        self.read_end, self.write_end = os.pipe2(os.O_CLOEXEC)
        try:
            fcntl.fcntl(self.write_end, F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass

    def splice(self, splice: splicing.SpliceCall, src: int, sock_fd: int, count: int, flags: int) -> int:
        """Send ``count`` bytes of ``src`` to the socket and the same bytes to the file; returns bytes sent."""
        sent = 0
        while sent < count:
            copied = splicing.tee(src, self.write_end, count - sent, 0)
            if copied == 0:
                break
            moved = splicing.splice_exactly(splice, self.read_end, sock_fd, copied, stall_timeout=self.stall,
                                            flags=flags)
            sent += moved
            if moved < copied:
                break
            into_file = splicing.splice_exactly(
                splice, src, self.fill.fileno(), copied, stall_timeout=self.stall, flags=splicing.SPLICE_F_MOVE,
            )
            self.fill.spliced(into_file)
            if into_file < copied:  # the client has bytes the pipe still holds: this body cannot go on
                raise StreamAborted("the cache file took only part of a chunk")
        return sent

    def close(self) -> None:
        os.close(self.read_end)
        os.close(self.write_end)


class SpliceThreadWorker(ThreadWorker):
    """gthread, with ``SpliceResponse`` as the HTTP/1.x response class of this process, request heads
    read on the event loop, replays answered there, and ``LoopBody`` streams held there."""

    def init_process(self) -> None:
        """Install the Response here: gunicorn.http.wsgi.create() looks it up on every request."""
        wsgi.Response = SpliceResponse
        self.replies = LoopReplies(self)
        self.loop = WorkerLoop(self)
        self.streams = loop_streams.LoopStreams(self.loop)
        self.heads = HeadReader(self.loop, self.cfg, self.head_complete)
        super().init_process()

    def get_thread_pool(self) -> futures.ThreadPoolExecutor:
        """gthread's pool with all its threads started now, not one by one as requests arrive together.

        The loop holds everything that only waits, so the pool is only for work and its size is
        the worker's whole thread budget: started at once, the count is the same with 0 viewers
        or 2000, and a crowd of viewers arriving together does not grow it.
        """
        pool = futures.ThreadPoolExecutor(max_workers=self.cfg.threads)
        started = threading.Barrier(self.cfg.threads + 1)
        for _ in range(self.cfg.threads):
            pool.submit(started.wait)
        started.wait()
        return pool

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        self.loop.dispatch(timeout)

    def enqueue_req(self, conn: TConn) -> None:
        """A connection with a request to serve: its head is read on the loop first, unless it is whole."""
        if getattr(conn, "head", None) is None and self.heads.take_over(conn):
            return
        super().enqueue_req(conn)

    def head_complete(self, conn: TConn, head: bytes) -> None:
        """On the loop, a whole request head: a replay answers it, else a thread (with the bytes) does."""
        if conn.initialized and self.replies.answer(conn, head):
            return
        conn.head = head
        super().enqueue_req(conn)

    def handle(self, conn: TConn) -> object:
        """In a thread: give gunicorn's parser the head the loop read, then serve the request as gthread does."""
        head = getattr(conn, "head", None)
        if head is not None:
            conn.head = None
            conn.data_ready = True
            try:
                conn.sock.setblocking(True)
                conn.init()
            except OSError:
                return False
            conn.parser.unreader.unread(head)
        return super().handle(conn)

    def finish_request(self, conn: TConn, fs: object) -> None:
        """A request's thread is done: a connection whose body the loop adopted is held, not closed."""
        if self.streams.claim(conn):
            return
        super().finish_request(conn, fs)
