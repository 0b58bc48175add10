"""Subprocess pipelines whose stdout is a response body.

A ``Pipeline`` starts a chain of argv lists (never a shell) connected by pipes, all
in one new process group, and is itself a read-only file object over the last
process's stdout. That lets it be handed to Django's ``FileResponse``: the WSGI
server sees a file whose ``fileno()`` is a pipe, so a splice-capable server can
move the bytes without Python touching them, and any other server reads it in
large blocks.

Whatever happens (end of output, a failing tool, a passed deadline, a client that
went away), ``close()`` kills the whole group unless it already finished, reaps
every process, closes every fd and releases the caller's work slot. gunicorn
calls ``close()`` from a ``finally``; so does Django's test client.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import select
import signal
import subprocess
import tempfile
import termios
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import Gauge

from .bodies import PipeBody

logger = logging.getLogger(__name__)

PIPE_SIZE = 1 << 20
F_SETPIPE_SZ = 1031
F_GETPIPE_SZ = 1032
# How often a settling wait looks at how full the output pipe is.
SETTLE_POLL = 0.005
STDERR_TAIL = 2000


def tools_gauge() -> Gauge:
    """The gauge of tool processes running; imported when first needed, so scripts without
    Django or a metrics folder can use pipelines."""
    from .metrics import TOOLS

    return TOOLS


class PipelineError(Exception):
    """A tool in the pipeline failed: carries the argv, the return code and stderr's tail."""

    def __init__(self, argv: Sequence[str], returncode: int | None, stderr: str, reason: str = "") -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        self.reason = reason or f"{Path(argv[0]).name} exited with status {returncode}"
        super().__init__(f"{self.reason}: {stderr.strip()[-500:]}")


class DeadlineExceeded(PipelineError):
    """The pipeline produced no output in time and was killed."""


class Pipeline(PipeBody):
    """A started chain of processes, readable as a file of its final output."""

    def __init__(
        self,
        argvs: Sequence[Sequence[str]],
        *,
        stdin_path: str | os.PathLike | None = None,
        env: dict[str, str] | None = None,
        deadline: float = 30.0,
        on_close: Callable[[], None] | None = None,
        settle: bool = False,
        fatal_stderr: re.Pattern[str] | None = None,
    ) -> None:
        """``settle``: see ``wait_for_output``; for tools that may fail after writing.

        ``fatal_stderr``: a message that fails the pipeline even when every tool
        exits 0 (a decoder that only warns about a damaged file).
        """
        if not argvs:
            raise ValueError("a pipeline needs at least one command")
        self.argvs = [list(a) for a in argvs]
        self.deadline = time.monotonic() + deadline
        self._on_close = on_close
        self.settle = settle
        self.fatal_stderr = fatal_stderr
        self._procs: list[subprocess.Popen] = []
        self._finished = False
        self._closed = False
        self._failure: PipelineError | None = None
        self.bytes_out = 0
        self.pgid = 0
        self._stdout = None
        self._stderr = tempfile.TemporaryFile()
        try:
            self._start(stdin_path, env)
        except BaseException:
            self.close()
            raise

    def _start(self, stdin_path: str | os.PathLike | None, env: dict[str, str] | None) -> None:
        stdin = open(stdin_path, "rb") if stdin_path is not None else subprocess.DEVNULL
        previous = None
        pgid = 0
        try:
            for argv in self.argvs:
                proc = subprocess.Popen(
                    argv,
                    stdin=previous.stdout if previous else stdin,
                    stdout=subprocess.PIPE,
                    stderr=self._stderr,
                    env=env,
                    close_fds=True,
                    process_group=pgid,
                )
                if previous is not None:
                    previous.stdout.close()
                pgid = pgid or proc.pid
                self.pgid = pgid
                self._procs.append(proc)
                tools_gauge().inc()
                previous = proc
        finally:
            if stdin is not subprocess.DEVNULL:
                stdin.close()
        self._stdout = previous.stdout
        try:
            fcntl.fcntl(self._stdout.fileno(), F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass

    # --- file-object protocol -------------------------------------------------

    def fileno(self) -> int:
        return self._stdout.fileno()

    def read(self, size: int = PIPE_SIZE) -> bytes:
        """Read up to ``size`` bytes; b"" at a clean end. Raises PipelineError on failure."""
        if self._closed:
            return b""
        fd = self.fileno()
        while True:
            self._wait_readable()
            try:
                chunk = os.read(fd, size)
            except InterruptedError:
                continue
            if chunk:
                self.bytes_out += len(chunk)
                return chunk
            self.finish()
            return b""

    def close(self) -> None:
        """Kill the group unless it finished, reap it, close fds, release the slot. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if not self._finished and self._procs:
                self._kill()
            for proc in self._procs:
                if proc.stdout is not None:
                    proc.stdout.close()
            self._stderr.close()
        finally:
            tools_gauge().dec(len(self._procs))
            if self._on_close is not None:
                self._on_close()

    @property
    def closed(self) -> bool:
        return self._closed

    # --- lifecycle -----------------------------------------------------------

    def available(self) -> int:
        """Bytes waiting in the output pipe now (FIONREAD)."""
        buf = fcntl.ioctl(self.fileno(), termios.FIONREAD, b"\0\0\0\0")
        return int.from_bytes(buf, "little")

    def wait_for_output(self) -> None:
        """Block until the first byte of output is ready, without consuming it.

        This is how a caller knows the tool accepted its input before it commits to a
        status line: a tool that fails at once raises PipelineError here, which the
        view turns into a clean 4xx instead of a truncated 200.

        With ``settle`` it waits longer: until every process has exited, or the output
        fills half the pipe (a large result, which then streams as usual). Image tools
        decode a damaged source with a warning, write a complete-looking file and only
        then fail: djpeg -strict exits non-zero, ImageMagick only warns on stderr (see
        ``fatal_stderr``). Settling lets a result that fits in the pipe be judged before
        the status line, so a truncated source gives a 4xx, not a 200 with grey garbage.
        """
        if self.settle:
            self._wait_settled()
        self._wait_readable()
        if self.available() == 0:
            self.finish()
            raise PipelineError(self.argvs[-1], 0, self.stderr_tail(), "the tool produced no output")
        if self.settle and all(proc.returncode is not None for proc in self._procs):
            self.finish()

    def finish(self) -> None:
        """At end of output: reap every process and raise if any of them failed (again on every later call)."""
        if self._finished:
            if self._failure is not None:
                raise self._failure
            return
        for proc in self._procs:
            remaining = max(0.0, self.deadline - time.monotonic())
            try:
                proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                self._kill()
                raise DeadlineExceeded(proc.args, None, self.stderr_tail(), "deadline passed") from None
        self._finished = True
        for proc in self._procs:
            if proc.returncode != 0:
                self._failure = PipelineError(proc.args, proc.returncode, self.stderr_tail())
                raise self._failure
        if self.fatal_stderr is not None:
            stderr = self.stderr_tail()
            if self.fatal_stderr.search(stderr):
                self._failure = PipelineError(self.argvs[-1], 0, stderr, "the tool reported a damaged input")
                raise self._failure

    def stderr_tail(self) -> str:
        if self._stderr.closed:
            return ""
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - STDERR_TAIL))
        return self._stderr.read().decode("utf-8", "replace")

    def _wait_settled(self) -> None:
        """Block until every process exited or the output pipe is half full, within the deadline."""
        fd = self.fileno()
        try:
            threshold = fcntl.fcntl(fd, F_GETPIPE_SZ) // 2
        except OSError:
            threshold = 32768
        pidfds: dict[int, subprocess.Popen] = {}
        try:
            for proc in self._procs:
                if proc.poll() is None:
                    pidfds[os.pidfd_open(proc.pid)] = proc
            while True:
                for pidfd, proc in list(pidfds.items()):
                    if proc.poll() is not None:
                        del pidfds[pidfd]
                        os.close(pidfd)
                if not pidfds:
                    return
                buffered = self.available()
                if buffered >= threshold:
                    return
                remaining = self.deadline - time.monotonic()
                if remaining <= 0:
                    self._kill()
                    raise DeadlineExceeded(self.argvs[-1], None, self.stderr_tail(), "deadline passed")
                # Until output appears, wake on its first byte; after that, poll how full the pipe is.
                writing = self._procs[-1].returncode is None
                watched = list(pidfds) + ([fd] if writing and not buffered else [])
                timeout = min(remaining, 1.0 if not buffered else SETTLE_POLL)
                try:
                    select.select(watched, [], [], timeout)
                except InterruptedError:
                    continue
        finally:
            for pidfd in pidfds:
                os.close(pidfd)

    def _wait_readable(self) -> None:
        fd = self.fileno()
        while True:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                self._kill()
                raise DeadlineExceeded(self.argvs[-1], None, self.stderr_tail(), "deadline passed")
            try:
                ready, _, _ = select.select([fd], [], [], min(remaining, 1.0))
            except InterruptedError:
                continue
            if ready:
                return

    def _kill(self) -> None:
        if self.pgid:
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except OSError as exc:
                if exc.errno != errno.ESRCH:
                    raise
        for proc in self._procs:
            proc.wait()
        self._finished = True
