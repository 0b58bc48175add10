"""Replays answered on the worker's event loop: how a kept response goes out again.

A kept-alive connection's next request head is read on the loop (``streaming.loop_heads``);
once it is whole, ``LoopReplies.answer`` looks at it there: when it is a request the
replay table holds (``streaming.replay``: what is kept and why it is safe), it sends the
kept response and puts the connection back in the poller, as gthread does after a
response. Anything else goes to a thread, the bytes read handed to gunicorn's parser.

The loop must never block, so there is one non-blocking send; a response the socket
cannot take at once has its rest sent by a thread (``send_rest``). Replays count towards
``max_requests`` and write the access log line gunicorn would, so operators see them as
ordinary requests.
"""

from __future__ import annotations

import selectors
import time
from datetime import timedelta
from email.utils import formatdate
from functools import partial
from types import SimpleNamespace
from typing import TYPE_CHECKING

from . import replay
from .conf import conf
from .metrics import REPLAYS

if TYPE_CHECKING:
    from gunicorn.workers.gthread import TConn, ThreadWorker

KEEP_ALIVE = b"Connection: keep-alive\r\n"


class DateLine:
    """The ``Date:`` header line, formatted once per second (gunicorn formats it per response)."""

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def line(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._line = b"Date: " + formatdate(now, usegmt=True).encode("ascii") + b"\r\n"
            self._second = now
        return self._line


class LoopReplies:
    """One worker's replays: answers from its event loop, with gthread's bookkeeping for each."""

    def __init__(self, worker: ThreadWorker) -> None:
        self.worker = worker
        self.date_line = DateLine()

    def answer(self, conn: TConn, data: bytes) -> bool:
        """Answer a kept-alive connection's whole request head ``data`` from the replay table.

        False leaves the request to a thread. Runs on the event loop, so it never blocks:
        one non-blocking send, and a response the socket cannot take at once has its rest
        sent by a thread.
        """
        worker = self.worker
        table = replay.current_table()
        if not table or not worker.alive or conn.is_http2 or worker.cfg.is_ssl:
            return False
        request = replay.parse_request(data)
        entry = table.find(request.key) if request is not None else None
        if entry is None:
            return False
        started = time.monotonic()
        status, payload = self.response(entry, request)
        worker.log.debug("replayed a kept response: %d", status)  # before the send, so tests can count it
        try:
            sent = conn.sock.send(payload)
        except BlockingIOError:
            sent = 0
        except OSError:
            worker.nr_conns -= 1
            conn.close()
            return True
        self.count_request()
        count_replay(entry, status, with_body=status == 200 and not request.head_only)
        if worker.log.access_log_enabled:
            self.log_replay(conn, request, status, payload, started)
        if sent < len(payload):
            future = worker.tpool.submit(send_rest, conn, payload[sent:])
            future.add_done_callback(lambda done: worker.method_queue.defer(worker.finish_request, conn, done))
            return True
        conn.set_timeout()
        worker.keepalived_conns.append(conn)
        worker.poller.register(conn.sock, selectors.EVENT_READ, partial(worker.on_client_socket_readable, conn))
        return True

    def response(self, entry: replay.Replay, request: replay.ReplayRequest) -> tuple[int, bytes]:
        """The status and the bytes to send: a 304 when If-None-Match matches, no body for HEAD."""
        common = self.date_line.line() + KEEP_ALIVE
        if request.if_none_match is not None and entry.matches_etag(request.if_none_match):
            return 304, entry.not_modified_head + common + entry.not_modified_headers
        if request.head_only:
            return 200, entry.ok_head + common + entry.headers
        return 200, entry.ok_head + common + entry.headers + entry.body

    def count_request(self) -> None:
        """What gthread's handle_request does per request: count it towards max_requests."""
        worker = self.worker
        worker.nr += 1
        if worker.nr >= worker.max_requests and worker.alive:
            worker.log.info("Autorestarting worker after current request.")
            worker.alive = False

    def log_replay(
        self, conn: TConn, request: replay.ReplayRequest, status: int, payload: bytes, started: float
    ) -> None:
        """One access-log line, as gunicorn writes for the app's responses."""
        method, target, protocol = (part.decode("latin-1") for part in request.request_line)
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers]
        path, _, query = target.partition("?")
        environ = {
            "REMOTE_ADDR": conn.client[0] if isinstance(conn.client, tuple) else str(conn.client),
            "REQUEST_METHOD": method, "RAW_URI": target, "PATH_INFO": path, "QUERY_STRING": query,
            "SERVER_PROTOCOL": protocol,
        }
        for name, value in headers:
            environ["HTTP_" + name.replace("-", "_")] = value
        body = len(payload) - payload.find(b"\r\n\r\n") - 4
        resp = SimpleNamespace(status=f"{status} {'OK' if status == 200 else 'Not Modified'}", sent=body,
                               headers=[])
        elapsed = timedelta(seconds=time.monotonic() - started)
        self.worker.log.access(resp, SimpleNamespace(headers=headers), environ, elapsed)


def count_replay(entry: replay.Replay, status: int, *, with_body: bool) -> None:
    """A replay is a request like any other in /metrics, and a result-cache hit when it was one."""
    REPLAYS.replayed(entry.kind, "2xx" if status == 200 else "3xx", len(entry.body) if with_body else 0)


def send_rest(conn: TConn, rest: bytes) -> bool:
    """In a thread: the part of a replay the socket could not take at once; True keeps the connection."""
    conn.sock.setblocking(True)
    conn.sock.settimeout(float(conf.STALL_TIMEOUT))
    try:
        conn.sock.sendall(rest)
    except OSError:
        return False
    finally:
        conn.sock.settimeout(None)
    return True
