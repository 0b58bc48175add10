"""Request heads read on the event loop: only a complete head goes to a thread.

gthread hands a new connection to a thread at once, and the thread then blocks reading
the request head with no time limit: 600 clients sending one header line every 5 s held
every thread of two workers (deploy notes, "Slow clients"). Here the head is read on the
loop, with non-blocking receives into a buffer per connection, and a thread gets the
connection only once the head is whole; its bytes go to gunicorn's parser, which parses
and checks them as before. nginx and HAProxy do the same (``client_header_timeout``,
``timeout http-request``):

    not whole within STREAMING_HEADER_TIMEOUT s   408 (closed without an answer if nothing came)
    request line over gunicorn's limit_request_line   414
    head over gunicorn's header limits   431

each with the JSON body every refusal has, and the connection closed. The timeout runs
from the accept on a new connection; a kept-alive connection waits for its next request
under gunicorn's ``keepalive`` timeout as before, and its head timeout starts with the
first byte. A head with a bare LF is handed on at once (gunicorn refuses it without
waiting). TLS and HTTP/2-with-prior-knowledge connections stay with gthread: their bytes
are not a plain head. Only the head is read here; a request body is read by the thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from gunicorn.http.message import DEFAULT_MAX_HEADERFIELD_SIZE, MAX_HEADERS, MAX_REQUEST_LINE
from gunicorn.http2.negotiation import prior_knowledge_allowed

from .conf import conf
from .errors import HttpError, error_bytes
from .event_loop import READ, Handler, WorkerLoop, receive

if TYPE_CHECKING:
    from gunicorn.config import Config
    from gunicorn.workers.gthread import TConn

RECEIVE = 1 << 16
SWEEP = 0.5  # seconds between looks for heads past their time
STOP_LINGER = 2.0  # a stopping worker waits this long at most for heads still arriving (gthread's linger)


class HeadTimeout(HttpError, status=408, code="request_timeout"):
    """The request head did not arrive whole within STREAMING_HEADER_TIMEOUT seconds."""


class RequestLineTooLong(HttpError, status=414, code="request_line_too_long"):
    """The request line is longer than gunicorn's ``limit_request_line``."""


class HeadTooLarge(HttpError, status=431, code="request_head_too_large"):
    """The request's header fields are more than gunicorn's limits allow."""


def request_line_limit(cfg: Config) -> int:
    """gunicorn's ``limit_request_line`` as its parser applies it (0: unlimited, read as 1 MiB)."""
    limit = cfg.limit_request_line
    if limit < 0 or limit >= MAX_REQUEST_LINE:
        return MAX_REQUEST_LINE
    return limit or 1 << 20


def header_limit(cfg: Config) -> int:
    """The most header bytes gunicorn's parser buffers (``limit_request_fields`` x field size)."""
    fields = cfg.limit_request_fields
    if fields <= 0 or fields > MAX_HEADERS:
        fields = MAX_HEADERS
    size = cfg.limit_request_field_size
    if size <= 0:
        size = DEFAULT_MAX_HEADERFIELD_SIZE
    return fields * (size + 2) + 4


def has_bare_lf(data: bytearray, start: int) -> bool:
    """Whether a LF at or after ``start`` lacks its CR (gunicorn rejects those at once)."""
    index = data.find(b"\n", start)
    while index >= 0:
        if index == 0 or data[index - 1] != 0x0D:
            return True
        index = data.find(b"\n", index + 1)
    return False


class PendingHead(Handler):
    """One connection whose request head is still arriving."""

    __slots__ = ("reader", "conn", "data", "scanned", "deadline", "done")

    def __init__(self, reader: HeadReader, conn: TConn, data: bytes, deadline: float) -> None:
        self.reader = reader
        self.conn = conn
        self.data = bytearray(data)
        self.scanned = 0
        self.deadline = deadline
        self.done = False

    def ready(self, mask: int) -> None:
        chunk = None if self.done else receive(self.conn.sock, RECEIVE)
        if chunk is None:
            return
        if not chunk:
            self.reader.close(self)  # the client left before finishing its request
            return
        self.data += chunk
        self.reader.examine(self)

    def failed(self) -> None:
        self.reader.close(self)


class HeadReader:
    """One worker's heads in progress; ``complete(conn, head)`` gets each one that is whole."""

    def __init__(self, loop: WorkerLoop, cfg: Config, complete: Callable[[TConn, bytes], None]) -> None:
        self.loop = loop
        self.cfg = cfg
        self.complete = complete
        self.line_limit = request_line_limit(cfg)
        self.head_limit = self.line_limit + 2 + header_limit(cfg)
        self.pending: dict[TConn, PendingHead] = {}
        loop.call_every(SWEEP, self.sweep)
        loop.on_stop(self.cap)

    def take_over(self, conn: TConn) -> bool:
        """Read ``conn``'s next request head here; False leaves the connection to gthread as it was."""
        if self.cfg.is_ssl or conn.is_http2 or prior_knowledge_allowed(self.cfg, conn.client):
            return False
        buffered = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        conn.sock.setblocking(False)  # a connection back from a thread (pipelined bytes) is still blocking
        deadline = time.monotonic() + float(conf.HEADER_TIMEOUT)
        if self.loop.stopping:
            deadline = min(deadline, time.monotonic() + STOP_LINGER)
        head = PendingHead(self, conn, buffered, deadline)
        self.pending[conn] = head
        self.loop.watch(conn.sock, READ, head)
        if buffered:
            self.examine(head)
        if not head.done:
            head.ready(READ)  # the request has often arrived already: no need to wait for the poller
        return True

    def examine(self, head: PendingHead) -> None:
        """Hand a whole head on, or refuse one that can no longer become a head gunicorn takes."""
        data = head.data
        whole = data.find(b"\r\n\r\n", max(0, head.scanned - 3)) >= 0 or has_bare_lf(data, max(0, head.scanned - 1))
        head.scanned = len(data)
        if whole:
            self._finish(head)
            self.complete(head.conn, bytes(data))
            return
        line_start = 2 if data.startswith(b"\r\n") else 0  # RFC 9112 2.2: one empty line may come first
        line_end = data.find(b"\r\n", line_start)
        if (line_end if line_end >= 0 else len(data)) - line_start > self.line_limit:
            self.refuse(head, RequestLineTooLong(f"the request line is over {self.line_limit} bytes"))
        elif len(data) > self.head_limit:
            self.refuse(head, HeadTooLarge(f"the request head is over {self.head_limit} bytes"))

    def refuse(self, head: PendingHead, error: HttpError) -> None:
        """Answer with ``error`` (one non-blocking send: it is small) and close without losing it."""
        self._finish(head)
        try:
            head.conn.sock.send(error_bytes(error))
        except OSError:
            pass
        self.loop.linger_close(head.conn)

    def close(self, head: PendingHead) -> None:
        if not head.done:
            self._finish(head)
            self.loop.close_conn(head.conn)

    def sweep(self) -> None:
        """Heads past their time: 408 when some of the head came, a plain close when nothing did."""
        now = time.monotonic()
        for head in [head for head in self.pending.values() if head.deadline <= now]:
            if head.data:
                self.refuse(head, HeadTimeout(f"the request head did not arrive within {conf.HEADER_TIMEOUT:g} s"))
            else:
                self.close(head)

    def cap(self) -> None:
        """The worker is stopping: heads still arriving get STOP_LINGER seconds at most."""
        latest = time.monotonic() + STOP_LINGER
        for head in self.pending.values():
            head.deadline = min(head.deadline, latest)

    def _finish(self, head: PendingHead) -> None:
        head.done = True
        self.pending.pop(head.conn, None)
        self.loop.unwatch(head.conn.sock)
