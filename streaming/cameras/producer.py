"""The one capture per camera: a producer thread that runs while its process holds the lease.

Any worker with viewers of a camera calls ``ensure_running`` (from its reader's
heartbeat); the first to win the Redis lease starts the producer, the others only
read. The producer publishes every frame on the camera's channel and keeps the
latest for snapshots. A keeper thread beside it renews the lease and watches the
deployment-wide viewer count: when no worker has reported a viewer for
``CAMERAS_IDLE_TIMEOUT`` seconds, or the lease was lost (this process stalled past
its TTL and another took over), the producer stops and the lease is released. A
failing source is reported (status and a failure message to every viewer) and
restarted after a delay that doubles up to ``CAMERAS_RESTART_BACKOFF_MAX``.

If the worker process dies, the lease lapses after its TTL and the next worker
with viewers takes over; ffmpeg gets EPIPE on its next write and exits.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
import time
import uuid

from ..metrics import CAMERA_PRODUCERS
from . import bus
from .conf import conf
from .os_thread_names import name_this_thread
from .registry import Camera
from .sources import SourceError

logger = logging.getLogger(__name__)

LEASE_TTL = 5.0
KEEP_INTERVAL = 0.5
LATEST_TTL_MS = 10_000

_producers: dict[str, Producer] = {}
_producers_lock = threading.Lock()


def ensure_running(camera: Camera) -> bool:
    """Start this camera's producer here if no process in the deployment runs one. True if started."""
    with _producers_lock:
        running = _producers.get(camera.name)
        if running is not None and running.is_alive():
            return False
        lease = bus.Lease(camera.name, f"{bus.process_id()}:{uuid.uuid4().hex[:8]}", LEASE_TTL)
        if not lease.acquire():
            return False
        producer = Producer(camera, lease)
        _producers[camera.name] = producer
        producer.start()
        return True


def running_here(name: str) -> Producer | None:
    with _producers_lock:
        producer = _producers.get(name)
        return producer if producer is not None and producer.is_alive() else None


@atexit.register
def stop_all(timeout: float = 3.0) -> None:
    """At process exit: stop every producer here, so ffmpeg is killed and reaped and leases released."""
    with _producers_lock:
        producers = list(_producers.values())
    for producer in producers:
        producer.stop()
    for producer in producers:
        producer.join(timeout)


class Producer(threading.Thread):
    """Captures one camera and publishes its frames while the lease is held and someone watches."""

    def __init__(self, camera: Camera, lease: bus.Lease) -> None:
        super().__init__(name=f"camera-producer-{camera.name}", daemon=True)
        self.camera = camera
        self.lease = lease
        self._stop_event = threading.Event()
        self.seq = 0
        self.frames_sent = 0
        self.state = "starting"
        self.error = ""
        self.last_error = ""  # kept after recovery, for operators (and tests)
        self.retry_at = 0.0
        self.stop_reason = ""
        self._keeper = threading.Thread(target=self._keep, name=f"camera-keeper-{camera.name}", daemon=True)

    def start(self) -> None:
        """Start the keeper, then the producer.

        The keeper is started here, from the caller's thread, not from ``run()``: a
        Linux thread is born with its creator's OS name, so a keeper started by the
        producer would show as a second ``cam-producer`` until it renamed itself.
        """
        self._keeper.start()
        super().start()

    def stop(self, reason: str = "stopped") -> None:
        if not self._stop_event.is_set():
            self.stop_reason = reason
        self._stop_event.set()

    def run(self) -> None:
        name = self.camera.name
        name_this_thread(f"cam-producer-{name}")
        redis = bus.client()
        redis.incr(bus.key(name, "producers"))
        redis.incr(bus.key(name, "starts"))
        CAMERA_PRODUCERS.labels(name).inc()
        logger.info("camera %s: producer started in %s", name, bus.process_id())
        backoff = conf.CAMERAS_RESTART_BACKOFF
        try:
            while not self._stop_event.is_set():
                try:
                    self._capture()
                except SourceError as exc:
                    self._failed(str(exc), backoff)
                    self._stop_event.wait(backoff)
                    backoff = min(backoff * 2, conf.CAMERAS_RESTART_BACKOFF_MAX)
                    continue
                except Exception as exc:  # a bug or a Redis outage must not leave the lease held
                    logger.exception("camera %s: producer crashed", name)
                    self._failed(f"internal error: {type(exc).__name__}", backoff)
                    self._stop_event.wait(backoff)
                    continue
                if self.frames_sent:
                    backoff = conf.CAMERAS_RESTART_BACKOFF
        finally:
            CAMERA_PRODUCERS.labels(name).dec()
            self._stop_event.set()
            self._keeper.join(5)
            with contextlib.suppress(Exception):
                self.lease.release()
                redis.decr(bus.key(name, "producers"))
                bus.write_status(name, state="stopped", error=self.error, last_error=self.last_error,
                                 reason=self.stop_reason)
            logger.info("camera %s: producer stopped (%s)", name, self.stop_reason)

    def _capture(self) -> None:
        """Run the source until told to stop; SourceError when it fails."""
        name = self.camera.name
        channel = bus.key(name, "frames")
        latest = bus.key(name, "latest")
        redis = bus.client()
        self.state = "starting"
        self._publish_status()
        frames = self.camera.open().frames(self._stop_event)
        with contextlib.closing(frames):
            for jpeg in frames:
                self.seq += 1
                message = bus.encode_frame(bus.Frame(self.seq, time.time(), jpeg))
                pipe = redis.pipeline(transaction=False)
                pipe.publish(channel, message)
                pipe.set(latest, message, px=LATEST_TTL_MS)
                pipe.execute()
                self.frames_sent += 1
                if self.state != "running":
                    self.state, self.error = "running", ""
                    self._publish_status()
        if not self._stop_event.is_set():
            raise SourceError("the source ended")

    def _failed(self, message: str, backoff: float) -> None:
        logger.warning("camera %s: source failed (%s); restarting in %g s", self.camera.name, message, backoff)
        self.state, self.error, self.retry_at = "failed", message, time.time() + backoff
        self.last_error = f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime())} UTC: {message}"
        self._publish_status()
        bus.client().publish(bus.key(self.camera.name, "frames"), bus.encode_failure(message))

    def _publish_status(self, fps: float = 0.0) -> None:
        bus.write_status(
            self.camera.name, state=self.state, error=self.error, last_error=self.last_error, fps=round(fps, 2),
            frames=self.seq,
            retry_at=self.retry_at if self.state == "failed" else 0, producer=self.lease.owner,
        )

    def _keep(self) -> None:
        """Renew the lease, publish the frame rate, and stop the producer when nobody watches."""
        name_this_thread(f"cam-keeper-{self.camera.name}")
        idle_timeout = conf.CAMERAS_IDLE_TIMEOUT
        last_demand = time.monotonic()
        last_count, last_time = self.frames_sent, time.monotonic()
        while not self._stop_event.wait(KEEP_INTERVAL):
            try:
                if not self.lease.renew():
                    self.stop("lease lost")
                    return
                now = time.monotonic()
                if sum(bus.viewer_counts(self.camera.name).values()) > 0:
                    last_demand = now
                elif now - last_demand >= idle_timeout:
                    self.stop("idle")
                    return
                if now - last_time >= 1.0:
                    fps = (self.frames_sent - last_count) / (now - last_time)
                    last_count, last_time = self.frames_sent, now
                    if self.state == "running":
                        self._publish_status(fps)
            except Exception:
                logger.exception("camera %s: keeper failed; stopping the producer", self.camera.name)
                self.stop("redis error")
                return
