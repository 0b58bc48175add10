"""The kinds of response body the splice worker knows, written down as base classes.

gunicorn hands every ``wsgi.file_wrapper`` body to ``Response.write_file()``, and
``streaming.gunicorn_worker.SpliceResponse`` sends it one of four ways, chosen by
the class the body derives from here (anything else goes to gunicorn's own path):

    PipeBody      a tool's stdout (``Pipeline``, ``TeedPipeline``): spliced from its
                  ``fileno()`` into the socket, sized by ``available()``, bounded by
                  ``deadline``, judged by ``finish()``; tee'd into ``fill`` when it has one
    FollowedBody  another request's render as it grows (``GrowingFile``): read and sent
                  as it arrives; it has no pipe to splice and no length yet
    FileBody      a regular file from its current offset (``FileSlice``): gunicorn's
                  sendfile; kept for replays when the app set ``replay_source``
    LoopBody      a body that mostly waits (an MJPEG viewer, an event stream): once the
                  headers are out its socket goes to the worker's event loop
                  (``streaming.loop_streams``), which drives it through ``start``,
                  ``drained``, ``stop`` and ``end``; no thread waits with it

They are abstract base classes rather than runtime-checkable Protocols on purpose:
``isinstance`` against a Protocol only looks for attribute names, which is the
guessing (``getattr(body, "fill")``, "is its fd a FIFO?") this module replaces. A
body says what it is by deriving from one of these, and the worker trusts that.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, NamedTuple, Protocol, Self

if TYPE_CHECKING:
    from .loop_streams import LoopStream

Identity = tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns


class ReplaySource(NamedTuple):
    """The one file a replayable response's bytes follow from, and what that file was then."""

    path: str
    identity: Identity
    kind: str = "file"  # what the response was, for /metrics: "original", or the transform's kind


class Body(ABC):
    """A read-only file-like that a WSGI server closes when the response ends."""

    def readable(self) -> bool:
        return True

    @abstractmethod
    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes; b"" at the end."""

    @abstractmethod
    def close(self) -> None:
        """Release everything the body holds (processes, fds, locks); safe to call twice."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SpliceFill(Protocol):
    """Where a pipe body's bytes are also written: the worker splices each chunk into ``fileno()``."""

    def fileno(self) -> int: ...

    def spliced(self, count: int) -> None:
        """Account for ``count`` bytes moved into ``fileno()`` behind the object's back."""


class PipeBody(Body):
    """A body read from a pipe that a running tool writes into."""

    deadline: float  # time.monotonic() past which the tool is killed; the worker's waits end there too
    fill: SpliceFill | None = None  # a cache file filled with the same bytes (``streaming.fill``)

    @abstractmethod
    def fileno(self) -> int:
        """The read end of the pipe."""

    @abstractmethod
    def available(self) -> int:
        """Bytes waiting in the pipe now (FIONREAD): how much the next splice may move."""

    @abstractmethod
    def finish(self) -> None:
        """At the end of the pipe: reap the tool(s); raises when one of them failed."""


class FollowedBody(Body):
    """A file another request is still writing: ``read()`` waits for bytes and raises when the writer gives up."""


class FileBody(Body):
    """A regular file's bytes from the fd's current offset, for sendfile."""

    replay_source: ReplaySource | None = None  # set by ``streaming.replay.mark_replayable``

    @abstractmethod
    def fileno(self) -> int:
        """The open file, positioned at the first byte of the body."""


class LoopBody(Body):
    """A body that waits far more than it sends: under the splice worker the event loop holds it.

    The worker's loop calls ``start`` once it owns the socket, ``drained`` each time
    bytes that had to wait have all left, ``stop`` when the worker stops (end the way a
    client understands: the closing boundary), and ``end`` once it has let go of the
    socket. Anywhere else (runserver, the test client, another server, TLS) the body is
    read like any other: ``read()`` blocks until the next piece, as a generator would,
    and the server's ``close()`` ends it.
    """

    on_loop = False  # set when the worker's loop took the body over: close() then leaves it to the loop
    send_timeout = 0.0  # seconds the held socket may accept nothing before the stream is dropped (0: never)

    @abstractmethod
    def start(self, stream: LoopStream) -> None:
        """On the loop: the socket is the loop's now; send through ``stream`` from here on."""

    def drained(self, stream: LoopStream) -> None:
        """On the loop: everything ``stream`` had pending has left; send more if there is more."""

    @abstractmethod
    def stop(self, stream: LoopStream) -> None:
        """On the loop: the worker is stopping; finish the stream the way its client understands."""

    @abstractmethod
    def end(self) -> None:
        """Release what the body holds (a viewer, a slot); safe to call twice."""

    def close(self) -> None:
        """The server is done with the response: off the loop that ends the body; on it, the loop ends it."""
        if not self.on_loop:
            self.end()
