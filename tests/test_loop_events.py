"""Render event streams held by the worker's event loop: raw sockets against real gunicorn, Redis and SQLite.

The test publishes progress the way a render worker does (``progress.publish`` into the same
Redis), so thirty streams on a two-thread worker get every change, heartbeats in between, a
resume after ``Last-Event-ID``, and the end of the stream after the final state, with no
thread each.
"""

from __future__ import annotations

import pytest
import requests

from tests.conftest import open_fds, wait_for
from tests.loop_clients import Crowd, EventReader, threads_of
from tests.render_helpers import TOKEN
from tests.render_stack import AUTH, manage


@pytest.fixture
def renders(gunicorn_factory, redis_url, tmp_path, settings):
    """gunicorn serving the render API on a migrated SQLite file; this process publishes into its cache."""
    (tmp_path / "media").mkdir()
    env = {"REDIS_URL": redis_url, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
           "MEDIA_ROOT": str(tmp_path / "media"), "RENDER_API_TOKEN": TOKEN, "RENDER_SSE_HEARTBEAT": "0.5"}
    manage(env, "migrate", "--noinput")
    server = gunicorn_factory(env, threads=2)
    (server.worker,) = wait_for(server.worker_pids)
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url,
                                   "KEY_PREFIX": "mediasite"}}  # the server's cache, so publish() here reaches it
    return server


def stream(server, task_id: str, last_event_id: int | None = None) -> EventReader:
    resume = f"Last-Event-ID: {last_event_id}\r\n" if last_event_id is not None else ""
    auth = f"Authorization: Bearer {TOKEN}\r\n"
    return EventReader(server.port, f"/api/renders/{task_id}/events", headers=auth + resume)


def heartbeats(reader: EventReader) -> int:
    return sum("heartbeat" in block.get("comment", []) for block in reader.blocks)


def test_event_streams_hold_no_thread_and_resume_after_the_last_event_id(renders):
    from transforms.renders.progress import publish

    submitted = requests.post(f"{renders.url}/api/renders/", json={"size": [320, 180], "clips": [
        {"title": "Hi", "duration": 1}]}, headers=AUTH, timeout=10)
    assert submitted.status_code == 202  # no render worker runs: it stays queued until canceled
    task = submitted.json()["task_id"]
    threads, fds = threads_of(renders.worker), open_fds(renders.worker)

    readers = [stream(renders, task) for _ in range(30)]
    crowd = Crowd(readers)
    assert crowd.pump(20, until=lambda: all(reader.ids() for reader in readers))
    assert all(reader.blocks[0]["retry"] == ["2000"] for reader in readers)
    published = []
    for _ in range(3):  # each change reaches every stream
        published.append(publish(task, {"status": "queued"}))
        assert crowd.pump(10, until=lambda: all(published[-1] in reader.ids() for reader in readers))
    assert crowd.pump(10, until=lambda: all(heartbeats(reader) >= 2 for reader in readers))  # and the quiet kept alive
    assert threads_of(renders.worker) <= threads  # thirty streams on a two-thread worker: no thread each
    assert all(reader.ids() == sorted(set(reader.ids())) for reader in readers)

    resumed = stream(renders, task, last_event_id=published[0])
    assert Crowd([resumed]).pump(10, until=lambda: resumed.ids())
    assert resumed.ids() == [published[-1]]  # only what came after the id it had seen

    canceled = requests.post(f"{renders.url}/api/renders/{task}/cancel", headers=AUTH, timeout=10)
    assert canceled.status_code == 202
    crowd = Crowd([*readers, resumed])
    assert crowd.pump(10, until=lambda: all(reader.eof for reader in crowd.readers))
    for reader in crowd.readers:  # the final event, then the end of the stream
        assert reader.terminated and '"status":"canceled"' in reader.blocks[-1]["data"][0]
    final = crowd.readers[0].ids()[-1]
    again = requests.get(f"{renders.url}/api/renders/{task}/events", headers={**AUTH, "Last-Event-ID": str(final)},
                         timeout=10)
    assert again.status_code == 204  # EventSource stops there
    crowd.close()
    assert wait_for(lambda: open_fds(renders.worker) <= fds)
    assert threads_of(renders.worker) <= threads
