"""/healthz, /readyz and /metrics on a real deployment: gunicorn with two workers, an rq worker, Redis.

The scrape is parsed with prometheus-client's own text parser; the counters must add up, across
both workers and the replays, to the requests this test sent.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests import media_factory
from tests.answers import scrape, total
from tests.conftest import Gunicorn, wait_for
from tests.deployment import RestartableRedis, manage, start_rq_worker, stop_rq_worker
from tests.render_helpers import TOKEN, make_sources, small_recipe

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Deployment:
    server: Gunicorn
    redis: RestartableRedis
    base: Path

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.server.url + path, timeout=30, **kwargs)

    def samples(self) -> dict[tuple[str, tuple], float]:
        """Every sample of a scrape: (name, sorted labels) -> value."""
        return scrape(self.server.url)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Iterator[Deployment]:
    base = tmp_path_factory.mktemp("metrics")
    media = base / "media"
    media.mkdir()
    make_sources(media)
    media_factory.save(media_factory.photo(800, 600), media / "big.jpg", quality=90)
    redis = RestartableRedis(base)
    env = {"REDIS_URL": redis.url, "DATABASE_URL": f"sqlite:///{base / 'db.sqlite3'}", "MEDIA_ROOT": str(media),
           "RENDER_API_TOKEN": TOKEN, "PROMETHEUS_MULTIPROC_DIR": str(base / "metrics"),
           "TRANSFORMS_CACHE_DIR": str(base / "cache")}
    (base / "metrics").mkdir()
    manage(env, "migrate", "--noinput")
    server = Gunicorn({**env, "_LOGFILE": str(base / "gunicorn.log")}, workers=2, threads=8)
    worker = start_rq_worker(env, base / "worker.log")
    yield Deployment(server, redis, base)
    stop_rq_worker(worker)
    server.stop()
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

    samples = deployment.samples()
    for (kind, status), count in sent.items():
        assert total(samples, "mediasite_requests_total", kind=kind, status=status) == count, (kind, status)
    hits = total(samples, "mediasite_result_cache_total", outcome="hit")
    replays = total(samples, "mediasite_result_cache_total", outcome="replay")
    assert total(samples, "mediasite_result_cache_total", outcome="miss") == 20
    assert hits + replays == 60 and replays > 0
    assert total(samples, "mediasite_refusals_total", code="invalid_parameter") == 1
    assert total(samples, "mediasite_transform_seconds_count", engine="pillow") == 20
    assert total(samples, "mediasite_bytes_sent_total", path="sendfile") > 0
    assert total(samples, "mediasite_work_slots_in_use") == 0
    assert total(samples, "mediasite_tool_processes") == 0


def test_a_render_lands_in_the_duration_histogram(deployment):
    submitted = requests.post(f"{deployment.server.url}/api/renders/", json=small_recipe(), headers=AUTH, timeout=10)
    assert submitted.status_code == 202, submitted.text
    task = submitted.json()["task_id"]
    wait_for(lambda: deployment.get(f"/api/renders/{task}", headers=AUTH).json()["status"] == "complete", 120)
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
