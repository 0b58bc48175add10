"""Follow a file that another request, in any worker process, is still filling.

When identical requests arrive while a stream renders (a transcode may take
minutes), waiting for the whole result wastes the viewer's time and rendering it
again wastes a core. The render's own request fills a temporary file beside its
stream (``streaming.fill``); a follower opens that file and sends what is there,
then what arrives, until the file is published under its final name (complete)
or is unlinked (the render failed or its client left: the follower's response
ends early too, so its client can tell).

Growth is polled, backing off from 5 to 100 ms: a follower costs a few syscalls
per poll, and the file outlives any one writer's notification mechanism (its
inode stays readable after rename or unlink).

A follower holds a shared flock on the file while it follows. That is how the
writer knows someone still reads it when its own client leaves: it then finishes
the render for the followers instead of killing it (``streaming.fill``).
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from .bodies import FollowedBody

BLOCK_SIZE = 1 << 20
FIRST_PAUSE = 0.005
LONGEST_PAUSE = 0.1


class FollowAborted(Exception):
    """The followed file will never be whole; the response must end without its terminator."""


class GrowingFile(FollowedBody):
    """A file-like over an open file from ``offset``: ``read()`` waits for bytes until it is renamed to ``final``.

    ``read()`` returns the next bytes as they arrive and ``b""`` once the writer
    published the file and everything is read; it raises ``FollowAborted`` when
    the writer gave up (the file was unlinked) or nothing arrived for ``stall``
    seconds. The splice worker sends it with its one-line abort on those
    (``streaming.gunicorn_worker``); other servers read it like any file.
    """

    def __init__(self, fd: int, final: Path, offset: int, stall: float) -> None:
        self._fd = fd
        self.final = Path(final)
        self.position = offset
        self.stall = stall
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            pass  # the writer is giving up this very moment: the file is unlinked and read() says so

    def read(self, size: int = BLOCK_SIZE) -> bytes:
        if size is None or size < 0:
            size = BLOCK_SIZE
        idle_since = time.monotonic()
        pause = FIRST_PAUSE
        while True:
            chunk = os.pread(self._fd, size, self.position)
            if chunk:
                self.position += len(chunk)
                return chunk
            if self.committed():
                chunk = os.pread(self._fd, size, self.position)  # written before the rename
                self.position += len(chunk)
                return chunk
            if os.fstat(self._fd).st_nlink == 0:
                raise FollowAborted("the render this request followed did not finish")
            if time.monotonic() - idle_since > self.stall:
                raise FollowAborted(f"the render this request followed made no progress for {self.stall:g} s")
            time.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE)

    def committed(self) -> bool:
        """Whether the writer published the file: the final name now points at our inode."""
        try:
            return os.stat(self.final).st_ino == os.fstat(self._fd).st_ino
        except FileNotFoundError:
            return False

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
