"""One core per gunicorn worker, and tools that still get every core.

A thumbnail request crosses threads: gthread's event loop reads the request and
hands it to a pool thread, which the kernel often wakes on the other core, where
the interpreter's and Pillow's working data is not in that core's cache. Measured
on the 2-core bench machine (docs/benchmarks.md), pinning each worker to its own
core takes about 0.4 ms of CPU off every 1920x1080 thumbnail (14.4 -> 14.0 ms).

Threads inherit their creator's affinity, and so would the tools a worker starts
(ffmpeg, convert, djpeg). ``every_core()`` widens the calling thread's mask while
it starts them, so a transcode is not held to its worker's core.

gunicorn.conf.py pins in ``post_fork`` (``GUNICORN_PIN_WORKERS``: ``auto`` pins
when there are at least as many workers as cores, ``1`` always, ``0`` never).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

# Every core this process could use before it pinned itself; None while it is not pinned.
_unpinned: frozenset[int] | None = None


def available_cpus() -> frozenset[int]:
    return frozenset(os.sched_getaffinity(0))


def should_pin(setting: str, workers: int) -> bool:
    """What ``GUNICORN_PIN_WORKERS`` means for this many workers on this machine."""
    setting = setting.strip().lower()
    if setting in ("0", "off", "false", "no"):
        return False
    cpus = len(available_cpus())
    if setting in ("1", "on", "true", "yes"):
        return cpus > 1
    return cpus > 1 and workers >= cpus


def pin_worker(sibling_pids: Iterable[int]) -> int:
    """Pin this process (and the threads it will start) to the core its siblings use least; return it.

    Siblings are the other workers alive at fork time. Choosing by their masks,
    not by spawn order, keeps a replacement worker off a core that is already taken.
    """
    global _unpinned
    cpus = sorted(available_cpus())
    load = dict.fromkeys(cpus, 0)
    for pid in sibling_pids:
        try:
            mask = os.sched_getaffinity(pid)
        except OSError:
            continue  # gone already
        if len(mask) == 1 and next(iter(mask)) in load:
            load[next(iter(mask))] += 1
    cpu = min(cpus, key=lambda candidate: (load[candidate], candidate))
    _unpinned = frozenset(cpus)
    os.sched_setaffinity(0, {cpu})
    return cpu


@contextmanager
def every_core() -> Iterator[None]:
    """Let the calling thread, and the processes it starts meanwhile, run on every core.

    On Linux an affinity set with pid 0 is the calling thread's alone, so the
    worker's other threads stay pinned.
    """
    if _unpinned is None:
        yield
        return
    pinned = os.sched_getaffinity(0)
    os.sched_setaffinity(0, _unpinned)
    try:
        yield
    finally:
        os.sched_setaffinity(0, pinned)
