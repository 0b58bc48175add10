"""Prometheus metrics, counted in every process of a machine and scraped from any of them.

prometheus-client's multiprocess mode: each process (every gunicorn worker, each render
worker and its work horses) writes its samples to mmapped files in one folder,
``PROMETHEUS_MULTIPROC_DIR`` (``var/metrics`` unless set; ``mediasite/settings.py``
sets the default before this module loads, since prometheus-client decides its storage
when it is first imported). ``/metrics`` merges them, so the counters of all processes
add up whichever worker answers the scrape. The gunicorn master removes the files of
processes that are gone when it starts, and a worker's live gauges when it exits
(hooks in ``mediasite/gunicorn.conf.py``). An increment is an mmap write under a lock,
about a microsecond: cheap enough for the replay path.

Samples that are facts of the moment (renders by state, queue length) are read when the
scrape comes, by collectors the apps register (``streaming.health.register_collector``,
which does not load prometheus-client, so an app's ``ready()`` may call it).
"""

from __future__ import annotations

import glob
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

os.makedirs(os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.join("var", "metrics")), exist_ok=True)

from prometheus_client import (  # noqa: E402  (after the folder is decided)
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import Metric  # noqa: E402

from .health import collectors  # noqa: E402

REQUESTS = Counter("mediasite_requests", "Requests answered, by kind and status class", ["kind", "status"])
TRANSFORM_SECONDS = Histogram(
    "mediasite_transform_seconds", "Seconds from a transform's start to its result (bytes, or a stream's first byte)",
    ["engine"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RESULT_CACHE = Counter("mediasite_result_cache", "Result cache lookups by outcome", ["outcome"])
BYTES_SENT = Counter("mediasite_bytes_sent", "Body bytes sent, by how they left the worker", ["path"])
REFUSALS = Counter("mediasite_refusals", "Requests refused, by error code (busy: work slots full)", ["code"])
WORK_SLOTS = Gauge("mediasite_work_slots_in_use", "Work slots taken", multiprocess_mode="livesum")
TOOLS = Gauge("mediasite_tool_processes", "Tool pipelines (ffmpeg, convert, djpeg...) running",
              multiprocess_mode="livesum")
CAMERA_VIEWERS = Gauge("mediasite_camera_viewers", "Viewers of each camera", ["camera"], multiprocess_mode="livesum")
CAMERA_PRODUCERS = Gauge("mediasite_camera_producers", "Captures running, per camera", ["camera"],
                         multiprocess_mode="livesum")



def status_class(status: int) -> str:
    return f"{status // 100}xx"


class ReplayTally:
    """Replays counted in plain ints and added to the shared counters by one thread, every FLUSH_SECONDS.

    A multiprocess counter increment is an mmap write under a lock, about 1.4 µs here;
    three of them would add a fifth to a replay's 17-21 µs of server CPU. Counted like
    this a replay pays a few dict additions, and the counters lag by at most two flush
    periods (a scrape interval is several seconds). Only the event loop counts here, so
    there is no lock: the flusher swaps in a fresh dict and adds up the one it swapped out
    a period later, when no increment can still be under way in it.
    """

    FLUSH_SECONDS = 0.5

    def __init__(self) -> None:
        self._counts: dict[tuple[str, ...], int] = defaultdict(int)
        self._settled: dict[tuple[str, ...], int] = {}  # swapped out a period ago: nothing writes to it now
        self._flusher: threading.Thread | None = None

    def replayed(self, kind: str, status: str, body_bytes: int) -> None:
        counts = self._counts
        counts[("requests", kind, status)] += 1
        if kind != "original":
            counts[("cache", "replay")] += 1
        if body_bytes:
            counts[("bytes", "replay")] += body_bytes
        if self._flusher is None:
            self._flusher = threading.Thread(target=self._flush_forever, name="metrics-flush", daemon=True)
            self._flusher.start()

    def flush(self) -> None:
        """Add everything counted so far to the shared counters (a worker's exit; and the tests)."""
        self._add(self._settled)
        self._settled, counts, self._counts = {}, self._counts, defaultdict(int)
        self._add(counts)

    def _add(self, counts: dict[tuple[str, ...], int]) -> None:
        metrics = {"requests": REQUESTS, "cache": RESULT_CACHE, "bytes": BYTES_SENT}
        for (name, *labels), amount in list(counts.items()):
            metrics[name].labels(*labels).inc(amount)

    def _flush_forever(self) -> None:
        while True:
            time.sleep(self.FLUSH_SECONDS)
            settled, self._settled = self._settled, {}
            self._add(settled)
            self._settled, self._counts = self._counts, defaultdict(int)


REPLAYS = ReplayTally()


class _Collectors:
    """The apps' scrape-time samples, as one prometheus-client collector."""

    def collect(self) -> Iterable[Metric]:
        for collect in collectors():
            yield from collect()


def exposition() -> tuple[bytes, str]:
    """The text format of every process's samples plus the scrape-time ones, and its content type."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(_Collectors())
    return generate_latest(registry), CONTENT_TYPE_LATEST


def open_files() -> None:
    """Open this process's metric files now, one per kind of metric (at a worker's start).

    prometheus-client opens a kind's file when its first sample is made; a worker that
    made its first histogram sample an hour in would seem to have gained an fd then.
    """
    REQUESTS.labels("page", "2xx")
    TRANSFORM_SECONDS.labels("pillow")
    WORK_SLOTS.inc(0)  # after a fork, the first touch reopens every kind already made


def forget_dead_processes() -> int:
    """Remove the files of processes that no longer run (at gunicorn's start); returns how many.

    Their counters leave the totals, which Prometheus reads as a restart of those processes.
    """
    removed = 0
    for path in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        try:
            pid = int(os.path.basename(path).rsplit("_", 1)[1].split(".")[0])
        except (IndexError, ValueError):
            continue
        if not _alive(pid):
            try:
                os.remove(path)
            except FileNotFoundError:
                continue  # another master starting beside this one removed it first
            removed += 1
    return removed


def process_exited(pid: int) -> None:
    """A worker is gone: its live gauges (slots, tools, viewers) stop counting."""
    multiprocess.mark_process_dead(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def request_kind(request: Any) -> str:
    """What a request was for: the view's own word (``request.metrics_kind``), else its URL's namespace or name."""
    kind = getattr(request, "metrics_kind", None)
    if kind:
        return kind
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "other"
    if match.namespace in ("cameras", "admin"):
        return "camera" if match.namespace == "cameras" else "admin"
    if (match.url_name or "").startswith("render-"):
        return "api"
    return match.url_name or "page"


class RequestMetricsMiddleware:
    """Counts every response Django makes by kind and status class (replays are counted by the worker)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        response = self.get_response(request)
        REQUESTS.labels(request_kind(request), status_class(response.status_code)).inc()
        return response
