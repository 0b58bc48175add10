"""Inside one worker process: one reader per camera, fanning frames out to its viewers.

The reader thread subscribes to the camera's Redis channel, turns each frame into
its multipart part once, keeps only the newest, and wakes the viewers, each through
its own event. A viewer thread wakes, takes the newest part and sends it; while it
is blocked on a slow socket newer frames simply replace the one it would have got,
so a slow viewer skips frames, holds at most one frame, and never delays anyone else.

Waking 200 threads at once makes them fight over the GIL (measured: ~40 futex calls
per frame sent, most of the CPU going to the kernel). So the wake-ups are passed
along in a few chains instead: the reader wakes the first viewers, and each viewer,
as soon as it has taken the frame and before it sends it, wakes the next one that
is waiting. A viewer still busy sending is skipped (it checks for the newest frame
itself before it waits again), so a slow viewer never holds up a chain.

Under the splice worker a viewer waits for its first frame as above and is then
handed to the event loop (``hand_to_loop``): it leaves the wake-up chains, and the
feed instead tells its listeners (``streaming.cameras.loop_viewers``, one per camera
per worker) of each new frame, and they send it to every loop viewer from the loop.

Every half second the reader reports this worker's viewer count to Redis and, if
no process runs the camera's producer, tries to take the lease and run it here.
When its last viewer has been gone for a moment the reader unsubscribes and exits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..metrics import CAMERA_VIEWERS
from . import bus, producer
from .conf import conf
from .mjpeg import encode_part
from .os_thread_names import name_this_thread
from .registry import Camera

logger = logging.getLogger(__name__)

HEARTBEAT = 0.5
READER_LINGER = 2.0
WAKE_CHAINS = 2
FRESH_FRAME = 2.0  # a new viewer starts with the held frame only if it is this recent


# Set when the worker begins a graceful stop (SIGTERM, also sent on reload): streams never
# end by themselves, so without this each would hold the worker for its whole graceful_timeout.
shutting_down = threading.Event()
SHUTDOWN_MESSAGE = "the server is restarting"


def end_all_streams() -> None:
    """Make every stream in this process end (with its closing boundary) within a wait step.

    Safe to call from a signal handler: it only sets an event, takes no lock.
    """
    shutting_down.set()


class TooManyViewers(Exception):
    """The camera is at CAMERAS_MAX_VIEWERS across the deployment."""


@dataclass(frozen=True)
class Delivery:
    frame: bus.Frame
    part: bytes


class Viewer:
    """One client's position: its wake-up event, the last delivery it got, failures it has seen."""

    __slots__ = ("event", "last", "failures", "waiting")

    def __init__(self, failures: int) -> None:
        self.event = threading.Event()
        self.last: Delivery | None = None
        self.failures = failures
        self.waiting = False


class Feed:
    """One camera inside this process."""

    def __init__(self, camera: Camera) -> None:
        self.camera = camera
        self._lock = threading.Lock()
        # Serialises what this process publishes as its viewer count (admissions and
        # heartbeats), so an older count never overwrites a newer one in Redis.
        self._count_lock = threading.Lock()
        self._viewers: set[Viewer] = set()
        self._wakeable: set[Viewer] = set()  # viewers with a thread of their own (not on the event loop)
        self._listeners: list[Callable[[], None]] = []
        self._reader: threading.Thread | None = None
        self._to_wake: list[Viewer] = []
        self.latest: Delivery | None = None
        self.failure: tuple[int, str] = (0, "")

    @property
    def viewer_count(self) -> int:
        return len(self._viewers)

    def attach(self) -> Viewer:
        """Register a viewer (starting the reader if needed); TooManyViewers past the limit."""
        limit = conf.CAMERAS_MAX_VIEWERS
        with self._count_lock:
            if not bus.admit_viewer(self.camera.name, bus.process_id(), len(self._viewers) + 1, limit):
                raise TooManyViewers()
            with self._lock:
                viewer = Viewer(self.failure[0])
                self._viewers.add(viewer)
                self._wakeable.add(viewer)
                CAMERA_VIEWERS.labels(self.camera.name).inc()
                if self._reader is None:
                    self._reader = threading.Thread(target=self._read, name=f"camera-reader-{self.camera.name}",
                                                    daemon=True)
                    self._reader.start()
        return viewer

    def detach(self, viewer: Viewer) -> None:
        """Forget a viewer here; Redis hears of it at the next heartbeat.

        Until then this worker's published count is one too high, which only makes
        admissions stricter, and keeps the producer alive through the gap a
        reconnecting viewer leaves.
        """
        with self._lock:
            self._wakeable.discard(viewer)
            if viewer in self._viewers:
                self._viewers.discard(viewer)
                CAMERA_VIEWERS.labels(self.camera.name).dec()

    def hand_to_loop(self, viewer: Viewer) -> None:
        """The event loop serves ``viewer`` from now on: it stays counted but leaves the wake-up chains."""
        with self._lock:
            self._wakeable.discard(viewer)

    def listen(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` (from the reader thread; it must not block) after each frame or failure."""
        with self._lock:
            self._listeners.append(listener)

    def unlisten(self, listener: Callable[[], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def next_part(self, viewer: Viewer, timeout: float) -> bytes | str | None:
        """The newest part this viewer has not had, a failure text, or None after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            if shutting_down.is_set():
                return SHUTDOWN_MESSAGE
            failures, message = self.failure
            if failures > viewer.failures:
                viewer.failures = failures
                return message
            latest = self.latest
            if latest is not None and latest is not viewer.last:
                first = viewer.last is None
                viewer.last = latest
                if not first or time.time() - latest.frame.captured < FRESH_FRAME:
                    self._wake_next()
                    return latest.part
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            viewer.waiting = True
            if self.latest is latest and self.failure[0] == failures:  # nothing arrived while saying so
                viewer.event.wait(remaining)
            viewer.waiting = False
            viewer.event.clear()

    def _wake_next(self, chains: int = 1) -> None:
        """Wake the next viewer(s) of this frame that are waiting; busy ones fetch it themselves."""
        with self._lock:
            to_wake = self._to_wake
            while chains and to_wake:
                viewer = to_wake.pop()
                if viewer.waiting:
                    viewer.event.set()
                    chains -= 1

    # --- the reader thread ----------------------------------------------------

    def _read(self) -> None:
        name = self.camera.name
        name_this_thread(f"cam-reader-{name}")
        worker = bus.process_id()
        pubsub = bus.client().pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(bus.key(name, "frames"))
            next_beat = 0.0
            empty_since: float | None = None
            while True:
                message = pubsub.get_message(timeout=HEARTBEAT / 2)
                if message is not None and message["type"] == "message":
                    self._deliver(bus.decode(message["data"]))
                now = time.monotonic()
                if now < next_beat:
                    continue
                next_beat = now + HEARTBEAT
                with self._count_lock:
                    with self._lock:
                        count = len(self._viewers)
                        empty_since = None if count else (empty_since or now)
                        if empty_since is not None and now - empty_since >= READER_LINGER:
                            bus.report_viewers(name, worker, 0)
                            self._reader = None
                            self.latest = None
                            return
                    bus.report_viewers(name, worker, count)
                if count:
                    producer.ensure_running(self.camera)
        except Exception:
            logger.exception("camera %s: reader failed", name)
            with self._lock:
                self._reader = None
            self._deliver("the camera relay failed (Redis unreachable?)")
        finally:
            pubsub.close()

    def _deliver(self, item: bus.Frame | str) -> None:
        if isinstance(item, bus.Frame):
            self.latest = Delivery(item, encode_part(item))
            with self._lock:
                self._to_wake = list(self._wakeable)
                listeners = list(self._listeners)
            self._wake_next(WAKE_CHAINS)
        else:
            self.failure = (self.failure[0] + 1, item)
            with self._lock:
                viewers = list(self._wakeable)
                listeners = list(self._listeners)
            for viewer in viewers:
                viewer.event.set()
        for listener in listeners:
            listener()


_feeds: dict[str, Feed] = {}
_feeds_lock = threading.Lock()


def feed_for(camera: Camera) -> Feed:
    """This process's feed for ``camera`` (one per camera name and source)."""
    with _feeds_lock:
        feed = _feeds.get(camera.name)
        if feed is None or feed.camera != camera:
            feed = _feeds[camera.name] = Feed(camera)
        return feed
