"""Name camera threads for the operating system, so ``top -H``, ``ps -L`` and /proc show them.

Python (before 3.14) names threads only for itself. A worker holding hundreds of
viewer threads is easier to read, and the tests can count readers and producers
across processes honestly, when the few long-lived camera threads carry an OS name
(``cam-producer-<camera>``, at most 15 bytes) set with prctl(PR_SET_NAME).
"""

from __future__ import annotations

import ctypes
import ctypes.util

PR_SET_NAME = 15

try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
except OSError:
    _libc = None


def name_this_thread(name: str) -> None:
    """Set the calling thread's OS name (truncated to 15 bytes); a no-op where prctl is missing."""
    if _libc is None:
        return
    try:
        _libc.prctl(PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)
    except AttributeError:
        pass
