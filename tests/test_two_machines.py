"""Two web machines and two render workers on one Redis, one PostgreSQL and one shared MEDIA_ROOT.

Each "machine" is a gunicorn master of its own (two workers) on its own loopback address, with its
own result cache and var/ (metrics), and one render worker started with its environment: what
README "Deploying" calls per machine. Together they must behave as one deployment.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis as redis_client
import requests

from tests import media_factory
from tests.camera_helpers import counter
from tests.conftest import Gunicorn, RedisServer
from tests.render_helpers import TOKEN, ffprobe, make_sources, small_recipe
from tests.render_stack import AUTH, Stack, Workers, manage, read_events

HOSTS = ("127.0.0.2", "127.0.0.3")


@dataclass
class Deployment:
    machines: list[Stack]
    redis: RedisServer
    media: Path


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, postgres_server) -> Iterator[Deployment]:
    base = tmp_path_factory.mktemp("two-machines")
    media = base / "shared-media"  # the shared store: both machines and both workers mount it
    media.mkdir()
    make_sources(media)
    media_factory.save(media_factory.photo(1200, 800), media / "photo.jpg", quality=90)
    redis = RedisServer(base)
    database_url = postgres_server.create_database("two_machines")
    shared = {"REDIS_URL": redis.url, "DATABASE_URL": database_url, "MEDIA_ROOT": str(media),
              "RENDER_API_TOKEN": TOKEN, "DJANGO_ALLOWED_HOSTS": ",".join(HOSTS),
              "CAMERAS": "demo=emulated?size=160x120&fps=10"}
    manage(shared, "migrate", "--noinput")
    machines, workers = [], []
    for number, host in enumerate(HOSTS):
        own = base / f"machine-{number}"  # per machine: its result cache, its var/
        own.mkdir()
        env = {**shared, "TRANSFORMS_CACHE_DIR": str(own / "cache"), "PROMETHEUS_MULTIPROC_DIR": str(own / "metrics")}
        (own / "metrics").mkdir()
        server = Gunicorn({**env, "_LOGFILE": str(own / "gunicorn.log")}, workers=2, threads=16, host=host)
        machine = Stack(env, media, server, own, redis, database_url)
        machines.append(machine)
        workers.append(Workers(machine))
        workers[-1].start("--with-scheduler")
    yield Deployment(machines, redis, media)
    for started in workers:
        started.stop_all()
    for machine in machines:
        machine.server.stop()
    redis.stop()


def test_a_transform_is_made_right_on_both_machines_each_with_its_own_cache(deployment):
    for machine in deployment.machines:
        made = requests.get(f"{machine.url}/photo.jpg?size=300x200&fit=cover", timeout=30)
        assert made.status_code == 200 and media_factory.decode(made.content).size == (300, 200)
        assert [p for p in (machine.logs / "cache").rglob("*") if p.is_file()], "each machine caches for itself"


def test_a_camera_watched_from_both_machines_has_one_capture(deployment):
    client = redis_client.Redis.from_url(deployment.redis.url)
    frames: dict[str, int] = {}
    producers: set[int] = set()

    def watch(machine: Stack) -> None:
        with requests.get(f"{machine.url}/cameras/demo/stream.mjpg", stream=True, timeout=30) as stream:
            assert stream.status_code == 200
            seen = b""
            for chunk in stream.iter_content(16384):
                seen += chunk
                producers.add(counter(client, "demo", "producers"))
                if seen.count(b"Content-Type: image/jpeg") >= 8:
                    break
        frames[machine.server.host] = seen.count(b"Content-Type: image/jpeg")

    viewers = [threading.Thread(target=watch, args=(machine,)) for machine in deployment.machines]
    for viewer in viewers:
        viewer.start()
    for viewer in viewers:
        viewer.join(60)
    assert set(frames) == set(HOSTS) and all(count >= 8 for count in frames.values()), frames
    assert producers == {1}  # while both watched, one producer in the whole deployment
    assert counter(client, "demo", "starts") == 1
    viewers_by_worker = client.hkeys("mediasite:cameras:demo:viewers")
    assert len(viewers_by_worker) >= 2  # processes of both machines had viewers


def test_a_render_posted_to_one_machine_streams_from_the_other_and_is_served_by_both(deployment):
    first, second = deployment.machines
    task = first.submit(small_recipe())["task_id"]
    events = requests.get(f"{second.url}/api/renders/{task}/events", headers=AUTH, stream=True, timeout=120)
    seen = []
    for block in read_events(events):
        if "data" in block:
            status = json.loads("\n".join(block["data"]))
            seen.append((status["status"], status["progress"]))
            if status["status"] in ("complete", "failed", "canceled"):
                break
    events.close()
    assert seen[-1][0] == "complete", seen
    assert any(state == "processing" and 0 < progress < 100 for state, progress in seen), seen  # live, not at the end
    output = second.status(task)["videos"][0]
    path = output.split("/", 3)[3]
    bodies = [requests.get(f"{machine.url}/{path}", timeout=30) for machine in deployment.machines]
    assert all(body.status_code == 200 for body in bodies) and bodies[0].content == bodies[1].content
    assert float(ffprobe(deployment.media / path)["format"]["duration"]) > 2
    ran_it = [machine for machine in deployment.machines
              if any(task in log.read_text(errors="replace") for log in machine.logs.glob("worker-*.log"))]
    assert len(ran_it) == 1  # one of the two workers took it, whichever machine it was posted to
