"""/healthz, /readyz and /metrics on a real deployment: gunicorn with two workers, an rq worker, Redis.

The scrape is parsed with prometheus-client's own text parser; the counters must add up, across
both workers and the replays, to the requests this test sent.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from tests import media_factory
from tests.answers import scrape, total
from tests.conftest import Gunicorn, RedisServer, wait_for
from tests.render_helpers import small_recipe
from tests.render_stack import Stack, Workers, build_stack


@dataclass
class Deployment:
    stack: Stack

    @property
    def server(self) -> Gunicorn:
        return self.stack.server

    @property
    def redis(self) -> RedisServer:
        return self.stack.redis

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.server.url + path, timeout=30, **kwargs)

    def samples(self) -> dict[tuple[str, tuple], float]:
        """Every sample of a scrape: (name, sorted labels) -> value."""
        return scrape(self.server.url)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Iterator[Deployment]:
    base = tmp_path_factory.mktemp("metrics")
    (base / "metrics").mkdir()
    redis = RedisServer(base)
    stack = build_stack(base, redis, workers=2, PROMETHEUS_MULTIPROC_DIR=str(base / "metrics"),
                        TRANSFORMS_CACHE_DIR=str(base / "cache"))
    media_factory.save(media_factory.photo(800, 600), stack.media / "big.jpg", quality=90)
    workers = Workers(stack)
    workers.start()
    yield Deployment(stack)
    workers.stop_all()
    stack.server.stop()
    redis.stop()


def test_counters_add_up_across_workers_and_replays(deployment):
    sent = Counter()
    for size in range(100, 120):  # 20 thumbnails made now...
        assert deployment.get(f"/big.jpg?size={size}x").status_code == 200
        sent[("image", "2xx")] += 1
    with requests.Session() as kept_alive:  # ...then asked again on kept-alive connections: hits, and replays
        for _ in range(3):
            for size in range(100, 120):
                assert kept_alive.get(f"{deployment.server.url}/big.jpg?size={size}x", timeout=30).status_code == 200
                sent[("image", "2xx")] += 1
    for _ in range(5):
        assert deployment.get("/big.jpg").status_code == 200
        sent[("original", "2xx")] += 1
    assert deployment.get("/missing.jpg?size=10x").status_code == 404
    sent[("media", "4xx")] += 1  # refused before the file says what it is
    assert deployment.get("/big.jpg?size=0x0").status_code == 400
    sent[("image", "4xx")] += 1
    assert deployment.get("/clips/intro.mp4?format=hls&rendition=180&segment=0").status_code == 200
    sent[("hls_segment", "2xx")] += 1

    def counted() -> dict | None:  # replays reach the shared counters within a second (streaming.metrics)
        samples = deployment.samples()
        return samples if total(samples, "mediasite_requests_total", kind="image", status="2xx") >= 80 else None

    samples = wait_for(counted, timeout=5)
    for (kind, status), count in sent.items():
        assert total(samples, "mediasite_requests_total", kind=kind, status=status) == count, (kind, status)
    hits = total(samples, "mediasite_result_cache_total", outcome="hit")
    replays = total(samples, "mediasite_result_cache_total", outcome="replay")
    assert total(samples, "mediasite_result_cache_total", outcome="miss") == 21  # the thumbnails and the segment
    assert hits + replays == 60 and replays > 0
    assert total(samples, "mediasite_refusals_total", code="invalid_parameter") == 1
    assert total(samples, "mediasite_transform_seconds_count", engine="pillow") == 20
    assert total(samples, "mediasite_bytes_sent_total", path="sendfile") > 0
    assert total(samples, "mediasite_work_slots_in_use") == 0
    assert total(samples, "mediasite_tool_processes") == 0


def test_a_render_lands_in_the_duration_histogram(deployment):
    task = deployment.stack.submit(small_recipe())["task_id"]
    deployment.stack.wait_for(task, lambda status: status["status"] == "complete", 120)
    samples = deployment.samples()
    assert total(samples, "mediasite_renders", state="complete") == 1
    assert total(samples, "mediasite_render_seconds_count") == 1
    assert 0 < total(samples, "mediasite_render_seconds_sum") < 120
    assert total(samples, "mediasite_render_queue_length") == 0
    assert total(samples, "mediasite_requests_total", kind="api", status="2xx") >= 2


def test_readyz_follows_redis(deployment):
    ready = deployment.get("/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert set(body["checks"]) >= {"redis", "database", "media_root", "engines"}
    assert all(check["ok"] and check["seconds"] < 2 for check in body["checks"].values())
    deployment.redis.stop()
    try:
        stopped = time.monotonic()
        unready = wait_for(lambda: (r := deployment.get("/readyz")).status_code == 503 and r.json(), timeout=2)
        assert time.monotonic() - stopped < 2.5
        assert unready["failing"] == ["redis"]
        assert deployment.get("/healthz").status_code == 200  # alive all the same: nothing behind it is asked
    finally:
        deployment.redis.start()
    assert wait_for(lambda: deployment.get("/readyz").status_code == 200, timeout=10)


def test_operators_only(deployment):
    relayed = deployment.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})  # from outside, via a proxy
    assert relayed.status_code == 403 and relayed.json()["error"] == "forbidden"
    assert deployment.get("/readyz", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403
    assert deployment.get("/healthz", headers={"Host": "unknown.example"}).json() == {"status": "ok"}
