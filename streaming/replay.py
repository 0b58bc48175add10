"""Replays: small file responses the worker answers again without the WSGI app.

A cached thumbnail hit costs about 250 µs of Python in Django and gunicorn's
thread hand-off (docs/benchmarks.md), for 3 KB that never change until their
source does. nginx answers the same file in a tenth of that. So the worker keeps,
per process and bounded in bytes, the exact response the app gave to a request
(status line, every header the app and its middleware set, and the body) and,
when the same request arrives again on a kept-alive connection, sends it from
its event loop with one ``send()``: no parser, no thread, no Django.

What makes that safe:

* The app opts in per response (``mark_replayable``): only bodies whose bytes
  depend on nothing but the request named below and one file, whose identity
  (device, inode, size, mtime) is recorded when the response is made and
  checked with one ``stat()`` on every replay. A changed, replaced, re-linked or
  deleted file sends the request back to the app.
* The key is the request target exactly as sent plus every request header that
  could change the answer: all of them except a short list that cannot reach
  these views (User-Agent, Accept-Encoding, Referer, Sec-Fetch-*, ...).
  Host, Accept, Cookie, Authorization and X-Forwarded-Proto (which Django reads
  behind a TLS proxy) are part of the key, so ALLOWED_HOSTS, format negotiation and
  anything a middleware reads are decided by the app for each distinct combination.
  X-Forwarded-For and X-Real-IP are not: only /readyz and /metrics read them, and they
  are never replayed; behind nginx, every client shares the kept response. A response whose ``Vary`` names an
  ignored header (or ``*``) is never kept.
* Only plain cases are replayed: GET or HEAD, HTTP/1.1, one whole request in
  the buffer (no body, no pipelining), no Range / If-Range / If-Modified-Since /
  If-Match / Expect / Upgrade / ``Connection: close``. ``If-None-Match`` is
  answered (304) against the kept ETag, as the app would. Anything else goes to
  the app, with the bytes already read handed back to gunicorn's parser.
* Entries expire after ``STREAMING_REPLAY_TTL`` seconds, so the result cache's
  LRU still sees the hits and a purge is noticed within that time.

This module is what is kept and how it is keyed: the worker's response offers
itself (``offer``) after the app answered, and ``streaming.replay_loop`` answers
from the table on the event loop.

Settings: ``STREAMING_REPLAY_BYTES`` (per worker; 0 turns replays off),
``STREAMING_REPLAY_MAX_BODY``, ``STREAMING_REPLAY_TTL``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .bodies import FileBody, Identity, ReplaySource
from .conf import conf

if TYPE_CHECKING:
    from gunicorn.http.wsgi import Response

ENTRY_OVERHEAD = 512  # the key, the object and the dict slot, roughly
MAX_REQUEST = 8192

# Request headers that cannot change what a replayable view answers; all others are in the key.
IGNORED_HEADERS = frozenset({
    b"USER-AGENT", b"ACCEPT-ENCODING", b"ACCEPT-LANGUAGE", b"REFERER", b"CACHE-CONTROL", b"PRAGMA",
    b"DNT", b"UPGRADE-INSECURE-REQUESTS", b"PRIORITY", b"SEC-GPC", b"SEC-FETCH-DEST", b"SEC-FETCH-MODE",
    b"SEC-FETCH-SITE", b"SEC-FETCH-USER", b"SEC-CH-UA", b"SEC-CH-UA-MOBILE", b"SEC-CH-UA-PLATFORM",
    b"CONNECTION", b"IF-NONE-MATCH", b"X-FORWARDED-FOR", b"X-REAL-IP",
})
# Request headers that ask for something a replay does not do: the app answers these.
APP_ONLY_HEADERS = frozenset({
    b"CONTENT-LENGTH", b"TRANSFER-ENCODING", b"RANGE", b"IF-RANGE", b"IF-MODIFIED-SINCE", b"IF-MATCH",
    b"IF-UNMODIFIED-SINCE", b"EXPECT", b"UPGRADE", b"HTTP2-SETTINGS",
})
METHODS = (b"GET", b"HEAD")
# Response headers that describe the body: a 304 leaves them out.
BODY_HEADERS = frozenset({"content-type", "content-length", "accept-ranges", "content-disposition", "content-encoding"})

def identity_of(path: str) -> Identity | None:
    """What a file is right now (following symlinks), or None when it is gone."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


def mark_replayable(body: FileBody, path: str, identity: Identity, kind: str = "file") -> None:
    """Let the worker keep this response: its bytes follow from the request and the file at ``path``,
    which was ``identity`` when the response was made (every replay checks it still is).

    Only file bodies can be replayed (a pipe's bytes are gone once sent), so anything else is a bug.
    """
    if not isinstance(body, FileBody):
        raise TypeError(f"only a FileBody can be replayed, not {type(body).__name__}")
    body.replay_source = ReplaySource(path, identity, kind)


@dataclass(slots=True)
class Replay:
    """One kept response: everything after the Date and Connection headers is sent as kept."""

    ok_head: bytes  # b"HTTP/1.1 200 OK\r\nServer: ...\r\n"
    not_modified_head: bytes  # the same for 304
    headers: bytes  # the app's headers, each ending in CRLF, then the blank line
    not_modified_headers: bytes  # the same without the body's own (Content-Type, -Length, ...)
    body: bytes
    etag: bytes | None
    source: str
    identity: Identity
    expires: float
    kind: str = "file"  # the request kind it counts as in /metrics (``ReplaySource.kind``)
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = (len(self.ok_head) + len(self.headers) + len(self.not_modified_headers) + len(self.body)
                     + ENTRY_OVERHEAD)

    def matches_etag(self, if_none_match: bytes) -> bool:
        """If-None-Match as the app evaluates it: ``*``, or our tag, weak or strong, in the list."""
        if self.etag is None:
            return False
        for tag in if_none_match.split(b","):
            tag = tag.strip()
            if tag == b"*" or tag == self.etag or tag == b"W/" + self.etag:
                return True
        return False


@dataclass(slots=True)
class ReplayRequest:
    """What a replay needs from a request: its key, whether to send the body, If-None-Match,
    and the request line and headers as parsed, for the access log."""

    key: tuple
    head_only: bool
    if_none_match: bytes | None
    request_line: list[bytes]  # method, target, protocol
    headers: list[tuple[bytes, bytes]]  # upper-case names, stripped values


def request_key(target: bytes, headers: Iterable[tuple[bytes, bytes]]) -> tuple | None:
    """The key of a request: its target and its relevant headers (upper-case names, stripped values).

    None when a header asks for something only the app does (a Range, a body, ...).
    """
    kept = []
    for name, value in headers:
        if name in IGNORED_HEADERS:
            if name == b"CONNECTION" and value.lower() != b"keep-alive":
                return None
            continue
        if name in APP_ONLY_HEADERS:
            return None
        kept.append((name, value))
    kept.sort()
    return (target, *kept)


def parse_request(data: bytes) -> ReplayRequest | None:
    """A replay request from the bytes read off a kept-alive socket, or None for the app to handle."""
    if len(data) >= MAX_REQUEST or not data.endswith(b"\r\n\r\n") or data.find(b"\r\n\r\n") != len(data) - 4:
        return None  # partial, pipelined, carrying a body, or too long to bother with
    lines = data[:-4].split(b"\r\n")
    request_line = lines[0].split(b" ")
    if len(request_line) != 3 or request_line[0] not in METHODS or request_line[2] != b"HTTP/1.1":
        return None
    headers = []
    if_none_match = None
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            return None  # malformed or folded: the app's parser says what is wrong with it
        name = name.upper()
        value = value.strip()
        if name == b"IF-NONE-MATCH":
            if if_none_match is not None:
                return None
            if_none_match = value
        headers.append((name, value))
    key = request_key(request_line[1], headers)
    if key is None:
        return None
    return ReplayRequest(key, request_line[0] == b"HEAD", if_none_match, request_line, headers)


class ReplayTable:
    """This worker's replays, oldest evicted first past ``max_bytes``; safe to read from the event loop."""

    def __init__(self, max_bytes: int, max_body: int, ttl: float) -> None:
        self.max_bytes = max_bytes
        self.max_body = max_body
        self.ttl = ttl
        self._entries: dict[tuple, Replay] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def wants(self, key: tuple, length: int) -> bool:
        """Whether a response of ``length`` body bytes for ``key`` is worth reading and keeping."""
        if length > self.max_body:
            return False
        entry = self._entries.get(key)
        return entry is None or entry.expires <= time.monotonic()

    def keep(self, key: tuple, replay: Replay) -> None:
        if replay.size > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            while self._entries and self._bytes + replay.size > self.max_bytes:
                oldest = self._entries.pop(next(iter(self._entries)))
                self._bytes -= oldest.size
            self._entries[key] = replay
            self._bytes += replay.size

    def find(self, key: tuple) -> Replay | None:
        """The kept response for ``key`` if it is fresh and its file is unchanged; drops it otherwise."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires > time.monotonic() and identity_of(entry.source) == entry.identity:
            return entry
        self.forget(key, entry)
        return None

    def forget(self, key: tuple, entry: Replay) -> None:
        with self._lock:
            if self._entries.get(key) is entry:
                del self._entries[key]
                self._bytes -= entry.size

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0


_table: ReplayTable | None = None
_table_decided = False
_table_lock = threading.Lock()


def replay_table() -> ReplayTable | None:
    """This process's table, sized from Django settings on first use; None when replays are off."""
    global _table, _table_decided
    if not _table_decided:
        with _table_lock:
            if not _table_decided:
                max_bytes = int(conf.REPLAY_BYTES)
                if max_bytes > 0:
                    _table = ReplayTable(max_bytes, int(conf.REPLAY_MAX_BODY), float(conf.REPLAY_TTL))
                _table_decided = True
    return _table


def current_table() -> ReplayTable | None:
    """The table if one exists already (the event loop never creates it)."""
    return _table


def offer(response: Response, body: FileBody) -> None:
    """Keep ``response`` (its head as sent, and ``body`` read once) if the app marked it and it is a plain 200."""
    source = body.replay_source
    if source is None or not replayable(response):
        return
    table = replay_table()
    if table is None:
        return
    key = request_key(
        response.req.uri.encode("latin-1"),
        ((name.encode("latin-1"), value.encode("latin-1")) for name, value in response.req.headers),
    )
    length = response.response_length
    if key is None or length is None or not table.wants(key, length):
        return
    fd = body.fileno()
    content = os.pread(fd, length, os.lseek(fd, 0, os.SEEK_CUR))
    if len(content) != length:
        return
    server = f"Server: {response.version}\r\n".encode("latin-1")
    headers = [f"{name}: {value}\r\n" for name, value in response.headers]
    unchanged = [line for line in headers if line.split(":", 1)[0].lower() not in BODY_HEADERS]
    etag = next((value for name, value in response.headers if name.lower() == "etag"), None)
    table.keep(key, Replay(
        ok_head=b"HTTP/1.1 " + response.status.encode("latin-1") + b"\r\n" + server,
        not_modified_head=b"HTTP/1.1 304 Not Modified\r\n" + server,
        headers=("".join(headers) + "\r\n").encode("latin-1"),
        not_modified_headers=("".join(unchanged) + "\r\n").encode("latin-1"),
        body=content,
        etag=etag.encode("latin-1") if etag else None,
        source=source.path,
        identity=source.identity,
        expires=time.monotonic() + table.ttl,
        kind=source.kind,
    ))


def replayable(response: Response) -> bool:
    """A whole 200 to a kept-alive HTTP/1.1 GET, not varying on a header replays ignore."""
    if (
        response.req.method != "GET"
        or response.req.version != (1, 1)
        or response.status_code != 200
        or response.chunked
        or response.upgrade
        or response.should_close()
        or response.cfg.is_ssl
    ):
        return False
    for name, value in response.headers:
        if name.lower() == "vary":
            varies = {part.strip().upper().encode("latin-1") for part in value.split(",")}
            if b"*" in varies or varies & IGNORED_HEADERS:
                return False
    return True
