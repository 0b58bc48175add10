"""A per-process limit on concurrent work, counted in weighted slots.

A worker process may run only so many tool processes (or in-process encodes) at
once. A request may wait a moment for a slot (a browser opens six connections
for a page of thumbnails at once; each is short), but past that short wait it is
refused with 503 + Retry-After instead of queueing behind the others without
bound and blowing its deadline. Heavier work (a video transcode) takes more slots
than a thumbnail.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class Gauge(Protocol):
    """What a slot count reports to: a prometheus-client Gauge, or anything with inc and dec."""

    def inc(self, amount: float = 1) -> None: ...

    def dec(self, amount: float = 1) -> None: ...


class Saturated(Exception):
    """No capacity is left for this piece of work right now."""

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__("all work slots are busy")
        self.retry_after = retry_after


class WorkSlots:
    """Non-blocking weighted counter: acquire returns a release callable or raises."""

    def __init__(self, capacity: int, gauge: Gauge | None = None) -> None:
        """``gauge`` (a metric with inc/dec) follows the slots in use, for /metrics."""
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.gauge = gauge
        self._used = 0
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)

    @property
    def used(self) -> int:
        return self._used

    def acquire(self, weight: int = 1, wait: float = 0.0) -> Slot:
        """Take ``weight`` slots, waiting up to ``wait`` seconds for them; else raise Saturated."""
        weight = min(max(1, weight), self.capacity)
        deadline = time.monotonic() + wait
        with self._freed:
            while self._used + weight > self.capacity:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Saturated()
                self._freed.wait(remaining)
            self._used += weight
        if self.gauge is not None:
            self.gauge.inc(weight)
        return Slot(self, weight)

    def _release(self, weight: int) -> None:
        with self._freed:
            self._used -= weight
            self._freed.notify_all()
        if self.gauge is not None:
            self.gauge.dec(weight)


class Slot:
    """One acquisition; releasing twice is harmless, so every cleanup path may call it."""

    def __init__(self, owner: WorkSlots, weight: int) -> None:
        self._owner = owner
        self._weight = weight
        self._released = False
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._owner._release(self._weight)

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def process_slots(capacity: Callable[[], int], gauge: Gauge | None = None) -> Callable[[], WorkSlots]:
    """A getter for one ``WorkSlots`` per process, sized by ``capacity()`` on first use.

    Sized when first asked for, not at import: settings are read once they are ready,
    and each gunicorn worker (a process of its own) gets its own count.
    """
    slots: WorkSlots | None = None
    lock = threading.Lock()

    def get() -> WorkSlots:
        nonlocal slots
        with lock:
            if slots is None:
                slots = WorkSlots(capacity(), gauge)
            return slots

    return get
