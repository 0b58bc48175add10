"""A per-process limit on concurrent work, counted in weighted slots.

A worker process may run only so many tool processes (or in-process encodes) at
once; past that the request is refused with 503 + Retry-After instead of queueing
behind the others and blowing its deadline. Heavier work (a video transcode) takes
more slots than a thumbnail.
"""

from __future__ import annotations

import threading


class Saturated(Exception):
    """No capacity is left for this piece of work right now."""

    def __init__(self, retry_after: int = 1) -> None:
        super().__init__("all work slots are busy")
        self.retry_after = retry_after


class WorkSlots:
    """Non-blocking weighted counter: acquire returns a release callable or raises."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        return self._used

    def acquire(self, weight: int = 1) -> Slot:
        weight = min(max(1, weight), self.capacity)
        with self._lock:
            if self._used + weight > self.capacity:
                raise Saturated()
            self._used += weight
        return Slot(self, weight)

    def _release(self, weight: int) -> None:
        with self._lock:
            self._used -= weight


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
