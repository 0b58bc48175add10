"""The producer in-process against a real Redis: lease, failure reports, backoff, idle stop."""

from __future__ import annotations

import threading
import time

import pytest

from streaming.cameras import bus, producer
from streaming.cameras.registry import parse
from tests.conftest import wait_for


class Demand:
    """Pretends to be a worker with viewers: refreshes its viewer count until stopped."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            bus.report_viewers(self.name, "test-worker", 1)
            self.stop.wait(0.2)
        bus.report_viewers(self.name, "test-worker", 0)

    def end(self) -> None:
        self.stop.set()
        self.thread.join()


@pytest.fixture
def camera_settings(redis_url, settings, media_root):
    settings.CAMERAS_IDLE_TIMEOUT = 0.5
    settings.CAMERAS_RESTART_BACKOFF = 0.2
    settings.CAMERAS_RESTART_BACKOFF_MAX = 0.8
    settings.CAMERAS_STALL_TIMEOUT = 5
    yield settings
    producer.stop_all()


def test_failing_source_is_reported_and_retried_with_growing_delays(camera_settings):
    camera = parse("gone=file:missing.mp4")["gone"]
    pubsub = bus.client().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(bus.key("gone", "frames"))
    demand = Demand("gone")
    assert producer.ensure_running(camera)
    failures = []
    deadline = time.monotonic() + 15
    while len(failures) < 4 and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=1)  # None also for the (ignored) subscribe reply
        if message is not None:
            failures.append((time.monotonic(), bus.decode(message["data"])))
    assert len(failures) == 4, "failures not reported"
    status = bus.read_status("gone")
    demand.end()
    running = producer.running_here("gone")
    wait_for(lambda: not running.is_alive())
    pubsub.close()
    assert {text for _, text in failures} == {"missing.mp4: no such file in the media folder"}
    assert status["state"] == "failed" and status["retry_at"] > 0
    gaps = [b[0] - a[0] for a, b in zip(failures, failures[1:], strict=False)]
    assert gaps[2] > gaps[0]  # 0.2 s, 0.4 s, 0.8 s
    assert bus.client().get(bus.key("gone", "producers")) == b"0"
    assert bus.lease_holder("gone") is None
    assert bus.read_status("gone")["reason"] == "idle"


def test_one_lease_one_producer_and_a_lost_lease_stops_it(camera_settings):
    camera = parse("demo=emulated?size=160x120&fps=20")["demo"]
    demand = Demand("demo")
    try:
        assert producer.ensure_running(camera)
        assert not producer.ensure_running(camera)  # already running here
        other = bus.Lease("demo", "another-machine:1", 5)
        assert not other.acquire()  # and nowhere else
        frame = wait_for(lambda: bus.latest_frame("demo"))
        assert frame.jpeg.startswith(b"\xff\xd8")
        running = producer.running_here("demo")
        bus.client().set(bus.key("demo", "lease"), "another-machine:1")  # it stalled and someone took over
        wait_for(lambda: not running.is_alive())
        assert running.stop_reason == "lease lost"
        assert bus.lease_holder("demo") == "another-machine:1"  # not released: it is not ours
    finally:
        demand.end()
    assert bus.client().get(bus.key("demo", "starts")) == b"1"
    assert bus.client().get(bus.key("demo", "producers")) == b"0"
