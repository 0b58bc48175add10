"""A raw HTTP/1.x client for tests that need one socket and exact framing (keep-alive, HEAD, 304)."""

from __future__ import annotations

import socket

RESET_ON_CLOSE = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # SO_LINGER on, 0 s: close() sends RST


def reset(sock: socket.socket) -> None:
    """Close with a reset, as a client that vanishes mid-body looks to the server."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_ON_CLOSE)
    sock.close()


def leave_mid_body(port: int, target: str, times: int, first_bytes: int) -> None:
    """``times`` clients that ask for ``target``, read up to ``first_bytes`` of the answer and reset:
    what disconnects look like to the server, for leak checks."""
    for _ in range(times):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        sock.recv(first_bytes)
        reset(sock)


class RawClient:
    """An HTTP/1.x client on one socket that parses exactly one response at a time."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buffer = b""

    def request(self, method: str, target: str, version: str = "1.1", headers: str = "") -> None:
        self.sock.sendall(f"{method} {target} HTTP/{version}\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())

    def _fill(self) -> bool:
        chunk = self.sock.recv(1 << 20)
        self.buffer += chunk
        return bool(chunk)

    def _take_line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            if not self._fill():
                raise EOFError("connection closed")
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _take(self, count: int) -> bytes:
        while len(self.buffer) < count:
            if not self._fill():
                raise EOFError("connection closed")
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def response(self, head: bool = False) -> tuple[int, dict[str, str], bytes]:
        status = int(self._take_line().split()[1])
        headers: dict[str, str] = {}
        while line := self._take_line():
            name, value = line.decode("latin-1").split(":", 1)
            headers[name.strip().lower()] = value.strip()
        if head or status == 304:
            return status, headers, b""
        if headers.get("transfer-encoding") == "chunked":
            body = bytearray()
            while size := int(self._take_line(), 16):
                body += self._take(size)
                assert self._take_line() == b""
            assert self._take_line() == b""
            return status, headers, bytes(body)
        if "content-length" in headers:
            return status, headers, self._take(int(headers["content-length"]))
        while self._fill():
            pass
        body, self.buffer = self.buffer, b""
        return status, headers, body

    def closed_by_peer(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()

    def reset(self) -> None:
        reset(self.sock)
