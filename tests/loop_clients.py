"""Raw-socket clients for the event-loop tests: hundreds of MJPEG viewers or event streams read from one
thread through a selector (no thread per client, so the test stays cheap), and what /proc says of a worker."""

from __future__ import annotations

import os
import selectors
import socket
import time
from collections.abc import Callable

from tests.raw_http import reset


def threads_of(pid: int) -> int:
    """How many threads the process has now (/proc/<pid>/task)."""
    return len(os.listdir(f"/proc/{pid}/task"))


class ChunkedReader:
    """One HTTP/1.1 response read as it arrives: the head, then the chunked body de-chunked into ``body``."""

    def __init__(self, port: int, target: str, headers: str = "", rcvbuf: int | None = None) -> None:
        self.sock = socket.socket()
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
        self.sock.setblocking(False)
        self.raw = bytearray()
        self.body = bytearray()
        self.status: int | None = None
        self.head = ""
        self.chunk_left = 0
        self.between_chunks = False
        self.terminated = False  # the last chunk came: the body ended properly
        self.eof = False
        self.received = 0

    def receive(self) -> None:
        try:
            data = self.sock.recv(1 << 18)
        except BlockingIOError:
            return
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return
        self.received += len(data)
        self.raw += data
        if self.status is None:
            end = self.raw.find(b"\r\n\r\n")
            if end < 0:
                return
            self.head = self.raw[:end].decode("latin-1")
            self.status = int(self.head.split()[1])
            del self.raw[:end + 4]
        self._dechunk()
        self.parse()

    def _dechunk(self) -> None:
        raw = self.raw
        while raw and not self.terminated:
            if self.chunk_left:
                take = min(self.chunk_left, len(raw))
                self.body += raw[:take]
                del raw[:take]
                self.chunk_left -= take
                self.between_chunks = not self.chunk_left
                continue
            if self.between_chunks:
                if len(raw) < 2:
                    return
                assert raw[:2] == b"\r\n", bytes(raw[:20])
                del raw[:2]
                self.between_chunks = False
            end = raw.find(b"\r\n")
            if end < 0:
                return
            size = int(raw[:end], 16)
            del raw[:end + 2]
            self.chunk_left = size
            self.terminated = size == 0

    def parse(self) -> None:
        """What a subclass makes of the body so far."""

    def close(self) -> None:
        self.sock.close()

    def reset(self) -> None:
        reset(self.sock)


class MjpegViewer(ChunkedReader):
    """A camera viewer: the sequence numbers of the parts it got, and whether the closing boundary came."""

    def __init__(self, port: int, camera: str, query: str = "", **kwargs) -> None:
        super().__init__(port, f"/cameras/{camera}/stream.mjpg{query}", **kwargs)
        self.seqs: list[int] = []
        self.last_jpeg = b""
        self.closed_cleanly = False

    def parse(self) -> None:
        body = self.body
        while body:
            if body.startswith(b"--frame--"):
                self.closed_cleanly = True
                del body[:]
                return
            end = body.find(b"\r\n\r\n")
            if end < 0:
                return
            fields = dict(line.split(": ", 1) for line in body[:end].decode("latin-1").split("\r\n")[1:])
            length = int(fields["Content-Length"])
            if len(body) < end + 4 + length + 2:
                return
            self.seqs.append(int(fields["X-Frame-Seq"]))
            self.last_jpeg = bytes(body[end + 4:end + 4 + length])
            del body[:end + 4 + length + 2]


class EventReader(ChunkedReader):
    """An event stream: its blocks as dicts of field -> values (comments under "comment")."""

    def __init__(self, port: int, target: str, headers: str = "") -> None:
        super().__init__(port, target, headers)
        self.blocks: list[dict[str, list[str]]] = []

    def parse(self) -> None:
        while (end := self.body.find(b"\n\n")) >= 0:
            block: dict[str, list[str]] = {}
            for line in self.body[:end].decode().split("\n"):
                name, _, value = line.partition(":")
                block.setdefault(name or "comment", []).append(value.removeprefix(" "))
            self.blocks.append(block)
            del self.body[:end + 2]

    def ids(self) -> list[int]:
        return [int(block["id"][0]) for block in self.blocks if "id" in block]


class Crowd:
    """Many readers pumped from this one thread."""

    def __init__(self, readers: list[ChunkedReader]) -> None:
        self.readers = readers
        self.selector = selectors.DefaultSelector()
        for reader in readers:
            self.selector.register(reader.sock, selectors.EVENT_READ, reader)

    def pump(self, seconds: float, until: Callable[[], bool] | None = None) -> bool:
        """Read whatever arrives for ``seconds``, or until ``until()`` holds (then True)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if until is not None and until():
                return True
            for key, _ in self.selector.select(0.05):
                reader = key.data
                reader.receive()
                if reader.eof:
                    self.selector.unregister(reader.sock)
        return until is not None and until()

    def drop(self, reader: ChunkedReader) -> None:
        """Stop reading ``reader`` here (it is read, reset or closed by the test itself)."""
        if reader.sock.fileno() >= 0 and not reader.eof:
            self.selector.unregister(reader.sock)

    def close(self) -> None:
        for reader in self.readers:
            reader.close()
        self.selector.close()
