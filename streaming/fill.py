"""Fill a file beside a stream, and publish it only when it is whole.

``FileFill`` writes to a temporary name (``.<name>.<pid>.<thread>.tmp``) in the
target's folder and renames it into place in ``commit()``, which refuses unless
the caller says the producer succeeded and the bytes on disk are exactly the
bytes counted. Anything else (``abort()``, or ``close()`` without a commit)
deletes the temporary file, so an interrupted fill never leaves a partial file
where a reader could find it.

``TeedPipeline`` is a pipeline body that fills a ``FileFill`` as it is read. It
keeps the pipeline's ``fileno()``, so a splice-capable server still sees a FIFO:
``streaming.gunicorn_worker`` then tee(2)s each chunk into the file (zero-copy);
any other server calls ``read()`` and the chunk is written to the file from the
same Python buffer that goes to the client. Either way the file holds exactly
the bytes taken from the pipe, so when the client leaves while other requests
follow the file (``streaming.follow``), ``close()`` reads the rest of the
render into it for them and publishes it; with no follower it kills the tools.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from .bodies import PipeBody
from .pipeline import PIPE_SIZE, Pipeline

logger = logging.getLogger(__name__)

TEMP_SUFFIX = ".tmp"


def temp_name(final: Path) -> Path:
    return final.with_name(f".{final.name}.{os.getpid()}.{threading.get_ident()}{TEMP_SUFFIX}")


class FileFill:
    """A file written under a temporary name and renamed to ``final`` only when whole."""

    def __init__(self, final: Path, header: bytes = b"") -> None:
        self.final = Path(final)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.temp = temp_name(self.final)
        self._fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        self._done = False
        self.header_size = len(header)
        self.body_bytes = 0
        try:
            if header:
                self._write_all(header)
        except BaseException:
            self.abort()
            raise

    def fileno(self) -> int:
        return self._fd

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def write(self, data: bytes) -> None:
        self._write_all(data)
        self.body_bytes += len(data)

    def spliced(self, count: int) -> None:
        """Account for ``count`` bytes the caller moved into ``fileno()`` with splice."""
        self.body_bytes += count

    def followed(self) -> bool:
        """Whether a reader holds the temporary file shared, as ``streaming.follow.GrowingFile`` does."""
        if self._done:
            return False
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        return False

    def commit(self) -> bool:
        """Rename into place if the file holds exactly the counted bytes; otherwise abort."""
        if self._done:
            return False
        size = os.fstat(self._fd).st_size
        if size != self.header_size + self.body_bytes:
            logger.warning("not caching %s: %d bytes on disk, %d counted", self.final.name, size,
                           self.header_size + self.body_bytes)
            self.abort()
            return False
        self._done = True
        os.close(self._fd)
        try:
            os.rename(self.temp, self.final)
        except OSError:
            self._unlink()
            raise
        return True

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        os.close(self._fd)
        self._unlink()

    close = abort

    def _unlink(self) -> None:
        try:
            os.unlink(self.temp)
        except FileNotFoundError:
            pass


class TeedPipeline(PipeBody):
    """A ``Pipeline`` body whose bytes also fill a ``FileFill``; committed only after a clean exit.

    ``on_done(committed)`` runs once, from ``close()``, after the file was renamed
    into place or deleted (the cache releases its render lock there).
    """

    def __init__(self, pipeline: Pipeline, fill: FileFill, on_done: Callable[[bool], None] | None = None) -> None:
        self.pipeline = pipeline
        self.fill = fill
        self._on_done = on_done
        self._succeeded = False
        self._closed = False
        self.committed = False

    @property
    def deadline(self) -> float:
        return self.pipeline.deadline

    def fileno(self) -> int:
        return self.pipeline.fileno()

    def read(self, size: int = PIPE_SIZE) -> bytes:
        chunk = self.pipeline.read(size)
        if chunk:
            self.fill.write(chunk)
        else:
            self._succeeded = not self.pipeline.closed
        return chunk

    def finish(self) -> None:
        """At end of output (the splice path): reap the tools; raises if one of them failed."""
        self.pipeline.finish()
        self._succeeded = True

    def available(self) -> int:
        return self.pipeline.available()

    def wait_for_output(self) -> None:
        self.pipeline.wait_for_output()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        committed = False
        try:
            if not self._succeeded and not self.pipeline.closed and self.fill.followed():
                self._finish_for_followers()
            self.pipeline.close()
            committed = self.committed = self.fill.commit() if self._succeeded else False
        finally:
            if not committed:
                self.fill.abort()
            if self._on_done is not None:
                self._on_done(committed)

    def _finish_for_followers(self) -> None:
        """Our client left before the end, but other requests follow the file: read the rest into it.

        It stops (and the tools are killed) as soon as the last follower has left too.
        """
        logger.info("the client left; finishing the render into %s for the requests following it", self.fill.final.name)
        try:
            while self.read():
                if not self.fill.followed():
                    logger.info("the requests following %s left too: stopping its render", self.fill.final.name)
                    return
        except Exception as exc:  # the tool failed or ran out of time: the followers end early, as ours did
            logger.info("the render followed by other requests failed: %s", exc)

    @property
    def closed(self) -> bool:
        return self._closed
