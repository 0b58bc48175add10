"""Request heads read on the event loop, against real gunicorn over raw sockets.

A worker of two threads, a header timeout of 2 s and a keep-alive timeout of 2 s: clients that
trickle their heads hold no thread (ordinary requests are served meanwhile) and get 408; a
client that sends nothing is closed; heads over gunicorn's limits get 414/431; a bare LF gets
gunicorn's own 400 at once; a kept-alive connection idles out silently, and a partial request
pipelined behind a whole one is timed out like any other.
"""

from __future__ import annotations

import json
import socket
import time

import pytest
import requests

from tests.conftest import open_fds, wait_for
from tests.loop_clients import threads_of
from tests.raw_http import RawClient

HEADER_TIMEOUT = 2
LINE_LIMIT = 4094  # gunicorn's limit_request_line
HEAD_LIMIT = LINE_LIMIT + 2 + 100 * (8190 + 2) + 4  # and 100 fields of 8190 bytes (limit_request_fields, ..._size)


@pytest.fixture
def exposed(gunicorn_factory, tmp_path):
    (tmp_path / "media").mkdir()
    server = gunicorn_factory({"MEDIA_ROOT": str(tmp_path / "media"), "STREAMING_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
                               "GUNICORN_KEEPALIVE": "2"}, threads=2)
    (server.worker,) = wait_for(server.worker_pids)
    assert healthy(server)  # the worker is all set up (its files open) before anything is counted
    return server


def connect(server, first: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=15)
    if first:
        sock.sendall(first)
    return sock


def answer(sock: socket.socket) -> tuple[int | None, bytes]:
    """Everything the server sends until it closes: (status or None when nothing came, the raw bytes)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    sock.close()
    return (int(data.split(b" ", 2)[1]) if data else None), data


def error_of(data: bytes) -> str:
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Connection: close" in head and b"Content-Type: application/json" in head
    return json.loads(body)["error"]


def healthy(server) -> bool:
    return requests.get(f"{server.url}/healthz", timeout=5).status_code == 200


def test_trickling_heads_hold_no_thread_and_time_out_with_408(exposed):
    threads, fds = threads_of(exposed.worker), open_fds(exposed.worker)
    tricklers = [connect(exposed, b"GET /healthz HTTP/1.1\r\n") for _ in range(20)]  # ten per thread
    silent = connect(exposed)
    started = time.monotonic()
    served = 0
    while time.monotonic() - started < HEADER_TIMEOUT + 1.5:
        for sock in tricklers:
            try:
                sock.send(b"X")  # one byte of a header line, now and then
            except OSError:
                pass
        served += healthy(exposed)  # ordinary requests go through while every trickler waits
        time.sleep(0.3)
    assert served >= 5
    assert threads_of(exposed.worker) <= threads + 2  # at most the pool's two threads, however many trickle
    for sock in tricklers:
        status, data = answer(sock)
        assert status == 408 and error_of(data) == "request_timeout"
    assert answer(silent) == (None, b"")  # nothing came, nothing is said: closed
    assert wait_for(lambda: open_fds(exposed.worker) <= fds)


def test_heads_over_the_limits_get_414_and_431_and_a_bare_lf_gets_400_at_once(exposed):
    long_line = connect(exposed, b"GET /" + b"a" * (LINE_LIMIT + 10) + b" HTTP/1.1\r\n")
    status, data = answer(long_line)
    assert status == 414 and error_of(data) == "request_line_too_long"

    big = connect(exposed)
    field = b"X-Pad: " + b"p" * 8000 + b"\r\n"
    head = b"GET / HTTP/1.1\r\n" + field * (HEAD_LIMIT // len(field) + 2)  # no blank line: it never ends
    big.sendall(head[:HEAD_LIMIT + 100])
    status, data = answer(big)
    assert status == 431 and error_of(data) == "request_head_too_large"

    asked = time.monotonic()
    status, data = answer(connect(exposed, b"GET /healthz HTTP/1.1\nHost: 127.0.0.1\n\n"))
    assert status == 400 and time.monotonic() - asked < HEADER_TIMEOUT  # gunicorn's answer, not a timeout
    assert healthy(exposed)


def test_kept_alive_connections_idle_out_and_pipelined_partial_heads_time_out(exposed):
    idle = RawClient(exposed.port)
    for _ in range(2):  # the connection is kept alive and reused...
        idle.request("GET", "/healthz")
        assert idle.response()[0] == 200
    assert idle.closed_by_peer() and idle.buffer == b""  # ...then, silent, closed after the keep-alive timeout

    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    pipelined = connect(exposed, request + b"GET /healthz HT")  # a whole request, then a partial one
    status, data = answer(pipelined)
    assert status == 200 and b"HTTP/1.1 408" in data and data.count(b"HTTP/1.1 ") == 2
