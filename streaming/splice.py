"""splice(2) and tee(2): move pipe pages to a socket or a file without copying them.

A transform's output arrives in a pipe. ``splice`` hands the pipe's pages to the
client socket (or a cache file) inside the kernel, so the bytes never enter a
Python buffer; ``tee`` duplicates pipe pages into a second pipe without
consuming them, which is how one stream fills a cache file at the same time.

Two bindings of the same call: ``os.splice`` (Python 3.10+ on Linux) and a ctypes
binding to libc's ``splice``, used where ``os.splice`` is missing. Which one runs
is a setting (``STREAMING_SPLICE`` = auto | os | ctypes | off) so both are tested
on the same machine. ``tee`` has no ``os`` binding and always goes through libc.

The helpers here never block forever: the caller passes a stall timeout, every
EAGAIN waits in ``poll`` for at most that long, and a wait that ends without
progress raises ``Stalled``. That is what keeps a stalled tool or a client that
stopped reading from pinning a worker thread.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import select
import sys
import termios
import time
from collections.abc import Callable

from .conf import conf

SPLICE_F_MOVE = 1
SPLICE_F_NONBLOCK = 2
SPLICE_F_MORE = 4
MODES = ("auto", "os", "ctypes", "off")

# (fd_in, fd_out, count, flags) -> bytes moved; 0 means the input pipe is at its end.
SpliceCall = Callable[[int, int, int, int], int]


class Stalled(TimeoutError):
    """Neither side made progress within the stall timeout."""


def _load_libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    for name in ("splice", "tee"):
        function = getattr(libc, name, None)
        if function is None:
            return None
    libc.splice.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t,
                            ctypes.c_uint]
    libc.splice.restype = ctypes.c_ssize_t
    libc.tee.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_size_t, ctypes.c_uint]
    libc.tee.restype = ctypes.c_ssize_t
    return libc


_libc = _load_libc()


def _checked(result: int) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


def ctypes_splice(fd_in: int, fd_out: int, count: int, flags: int) -> int:
    """libc ``splice`` with no offsets (both ends use their file positions); retries EINTR."""
    while True:
        try:
            return _checked(_libc.splice(fd_in, None, fd_out, None, count, flags))
        except InterruptedError:
            continue


def os_splice(fd_in: int, fd_out: int, count: int, flags: int) -> int:
    """``os.splice`` (which already retries EINTR, PEP 475)."""
    return os.splice(fd_in, fd_out, count, flags=flags)


def tee(fd_in: int, fd_out: int, count: int, flags: int = 0) -> int:
    """Duplicate up to ``count`` bytes of pipe ``fd_in`` into pipe ``fd_out`` without consuming them."""
    if _libc is None:
        raise OSError(errno.ENOSYS, "tee(2) is not available here")
    while True:
        try:
            return _checked(_libc.tee(fd_in, fd_out, count, flags))
        except InterruptedError:
            continue


def tee_available() -> bool:
    return _libc is not None


def configured_mode() -> str:
    """STREAMING_SPLICE from Django settings when they are configured, else auto."""
    mode = conf.SPLICE
    return mode if mode in MODES else "auto"


def splice_function(mode: str | None = None) -> SpliceCall | None:
    """The splice binding for ``mode`` (default: the setting), or None when splice is off or missing."""
    mode = mode or configured_mode()
    if mode == "off" or not sys.platform.startswith("linux"):
        return None
    if mode in ("auto", "os") and hasattr(os, "splice"):
        return os_splice
    if mode in ("auto", "ctypes") and _libc is not None:
        return ctypes_splice
    return None


def wait_for(fd: int, events: int, deadline: float) -> int:
    """poll one fd until ``events`` (or an error/hang-up) or the deadline; returns the revents."""
    poller = select.poll()
    poller.register(fd, events)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Stalled(f"fd {fd} made no progress in time")
        try:
            ready = poller.poll(remaining * 1000)
        except InterruptedError:
            continue
        if ready:
            return ready[0][1]


def splice_exactly(
    splice: SpliceCall,
    fd_in: int,
    fd_out: int,
    count: int,
    *,
    stall_timeout: float,
    flags: int = SPLICE_F_MOVE | SPLICE_F_MORE,
) -> int:
    """Move ``count`` bytes, looping over short transfers and EAGAIN; fewer only at end of input.

    Each wait for either side is bounded by ``stall_timeout`` seconds since the last
    progress; past it ``Stalled`` is raised.
    """
    moved = 0
    deadline = time.monotonic() + stall_timeout
    while moved < count:
        try:
            done = splice(fd_in, fd_out, count - moved, flags)
        except BlockingIOError:
            wait_for(fd_in, select.POLLIN, deadline)
            wait_for(fd_out, select.POLLOUT, deadline)
            continue
        if done == 0:
            break
        moved += done
        deadline = time.monotonic() + stall_timeout
    return moved


def available(fd: int) -> int:
    """Bytes waiting in a pipe (FIONREAD)."""
    buf = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    return int.from_bytes(buf, sys.byteorder)
