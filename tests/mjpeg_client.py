"""A client-side reader for multipart/x-mixed-replace streams, as a viewer would parse them.

It relies on each part's Content-Length (never on scanning JPEG data for the
boundary) and records whether the stream ended with the closing delimiter.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class Part:
    headers: dict[str, str]
    body: bytes
    received: float  # time.time() when the whole part had arrived

    @property
    def seq(self) -> int:
        return int(self.headers["x-frame-seq"])

    @property
    def captured(self) -> float:
        return float(self.headers["x-frame-time"])


class MjpegReader:
    """Iterate the parts of a ``requests`` response opened with ``stream=True``."""

    def __init__(self, response, boundary: str = "frame") -> None:
        assert response.headers["Content-Type"] == f"multipart/x-mixed-replace; boundary={boundary}"
        self._chunks = response.iter_content(chunk_size=1 << 16)
        self._buf = b""
        self._delimiter = b"--" + boundary.encode()
        self.closed_cleanly = False

    def _fill(self) -> bool:
        try:
            chunk = next(self._chunks)
        except StopIteration:
            return False
        self._buf += chunk
        return True

    def __iter__(self) -> Iterator[Part]:
        while True:
            while len(self._buf) < len(self._delimiter) + 2 or (
                b"\r\n\r\n" not in self._buf and not self._buf.startswith(self._delimiter + b"--")
            ):
                if not self._fill():
                    return
            if self._buf.startswith(self._delimiter + b"--"):
                self.closed_cleanly = True
                return
            head, _, rest = self._buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            if lines[0] != self._delimiter.decode():
                raise AssertionError(f"expected a boundary, got {lines[0]!r}")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers["content-length"])
            self._buf = rest
            while len(self._buf) < length + 2:
                if not self._fill():
                    raise AssertionError("stream cut inside a part")
            body, trailer, self._buf = self._buf[:length], self._buf[length:length + 2], self._buf[length + 2:]
            assert trailer == b"\r\n", f"part not followed by CRLF: {trailer!r}"
            yield Part(headers, body, time.time())

    def take(self, count: int) -> list[Part]:
        parts = []
        for part in self:
            parts.append(part)
            if len(parts) == count:
                break
        return parts
