"""Cut a stream of concatenated JPEG images (ffmpeg's ``-f mjpeg`` output) into frames.

The frames are passed on byte for byte, never decoded or re-encoded. Searching
for the EOI marker alone is wrong (an embedded EXIF thumbnail carries its own
EOI), so the splitter walks the marker segments by their lengths up to the scan
data, and only inside entropy-coded data looks for a 0xFF that is neither byte
stuffing (FF 00) nor a restart marker (FF D0..D7). Its state survives between
``feed`` calls, so a frame split across reads costs no rescanning.
"""

from __future__ import annotations

SOI = b"\xff\xd8"
EOI_MARKER = 0xD9
SOS_MARKER = 0xDA
STANDALONE = {0x01, *range(0xD0, 0xD8)}
NEED_MORE = -1
CORRUPT = -2


class JpegSplitter:
    """Feed bytes in, get whole JPEG frames out; junk between frames is dropped."""

    def __init__(self, max_frame: int = 16 << 20) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self._pos = 0  # where parsing of the current frame resumes
        self._in_scan = False  # inside entropy-coded data
        self.dropped = 0  # bytes discarded while resynchronising

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        frames: list[bytes] = []
        while True:
            if self._pos == 0 and not self._sync():
                break
            end = self._frame_end()
            if end == CORRUPT:
                self._discard(2)
                continue
            if end < 0:
                if len(self._buf) > self.max_frame:
                    self._discard(2)
                    continue
                break
            frames.append(bytes(self._buf[:end]))
            del self._buf[:end]
            self._pos = 0
            self._in_scan = False
        return frames

    def _sync(self) -> bool:
        """Drop bytes before the next SOI; True when a frame start is at offset 0."""
        start = self._buf.find(SOI)
        if start < 0:
            keep = 1 if self._buf[-1:] == b"\xff" else 0
            self.dropped += len(self._buf) - keep
            del self._buf[: len(self._buf) - keep]
            return False
        if start:
            self.dropped += start
            del self._buf[:start]
        self._pos = 2
        return True

    def _discard(self, count: int) -> None:
        self.dropped += count
        del self._buf[:count]
        self._pos = 0
        self._in_scan = False

    def _frame_end(self) -> int:
        """Offset just past the frame's EOI; NEED_MORE, or CORRUPT when this is no JPEG after all."""
        buf = self._buf
        pos = self._pos
        while True:
            if self._in_scan:
                ff = buf.find(b"\xff", pos)
                if ff < 0 or ff + 1 >= len(buf):
                    self._pos = max(pos, len(buf) - 1)
                    return NEED_MORE
                following = buf[ff + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
                    pos = ff + 1 if following == 0xFF else ff + 2
                    continue
                self._in_scan = False
                pos = ff
            if pos + 2 > len(buf):
                self._pos = pos
                return NEED_MORE
            if buf[pos] != 0xFF:
                return CORRUPT
            marker = buf[pos + 1]
            if marker == 0xFF:
                pos += 1
                continue
            if marker == EOI_MARKER:
                return pos + 2
            if marker in STANDALONE:
                pos += 2
                continue
            if pos + 4 > len(buf):
                self._pos = pos
                return NEED_MORE
            length = (buf[pos + 2] << 8) | buf[pos + 3]
            pos += 2 + length
            if marker == SOS_MARKER:
                self._in_scan = True
