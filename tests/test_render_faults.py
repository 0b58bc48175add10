"""Redis going away under real render workers: gunicorn, ``manage.py rqworker --with-scheduler``, and a
redis-server that the tests stop and start again on the same port, with its append-only file
(the data comes back) or wiped (a Redis restarted without persistence).

What must hold (issue #12): the worker survives, the render in flight finishes, renders
queued meanwhile start when Redis is back, renders whose rq job is gone are queued again by
a worker's sweep, and the scheduler is neither lost nor left a zombie. A dead work horse is
in test_renders_live.py (on PostgreSQL); the lost-twice and silent-heartbeat rules, in-process,
in test_renders.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.conftest import RedisServer, wait_until
from tests.render_helpers import ffprobe, long_recipe, small_recipe
from tests.render_stack import FINAL, Stack, Workers, build_stack, gone, horse_of, scheduler_of, zombies_of

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def faults(tmp_path_factory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("render-faults")
    (base / "redis").mkdir()
    redis_server = RedisServer(base / "redis", appendonly=True)
    built = build_stack(base, redis_server, RENDER_SWEEP_INTERVAL="1", RENDER_REDIS_RETRY_MAX="1")
    yield built
    built.server.stop()
    redis_server.stop()


@pytest.fixture
def workers(faults) -> Iterator[Workers]:
    started = Workers(faults)
    yield started
    started.stop_all()
    faults.redis.stop()
    faults.redis.restart(wipe=True)  # the next test starts from an empty Redis


def test_a_redis_outage_under_a_running_render(faults, workers):
    """Redis (append-only) down for 5 s mid-render: the render finishes, the one queued behind it runs."""
    worker = workers.start("--with-scheduler")
    first = faults.submit(long_recipe(150))
    faults.wait_for(first["task_id"], lambda s: s["status"] == "processing" and s["stage"] == "video")
    behind = faults.submit(small_recipe())
    scheduler = scheduler_of(worker)
    assert scheduler is not None, "--with-scheduler should start rq's scheduler"

    faults.redis.stop()
    time.sleep(5)
    assert worker.poll() is None, "the worker quit when Redis went away"
    assert horse_of(worker) is not None, "the render in flight was given up"
    during = faults.status(first["task_id"])  # the web side answers from the row
    assert during["status"] == "processing", during
    assert wait_until(lambda: gone(scheduler), timeout=30), "the dead scheduler was left a zombie"
    faults.redis.start()

    done = faults.wait_for(first["task_id"], lambda s: s["status"] in FINAL, timeout=180)
    assert done["status"] == "complete", done
    assert faults.row(first["task_id"])["attempts"] == 1
    assert 149 <= float(ffprobe(faults.media / "renders" / f"{first['task_id']}.mp4")["format"]["duration"]) <= 151
    after = faults.wait_for(behind["task_id"], lambda s: s["status"] in FINAL, timeout=60)
    assert after["status"] == "complete", after
    assert worker.poll() is None
    assert wait_until(lambda: scheduler_of(worker) not in (None, scheduler), timeout=20), "no new scheduler"
    assert zombies_of(worker.pid) == []


def test_redis_restarted_without_its_data(faults, workers):
    """Redis comes back empty: before any worker, under a running render, and under an idle worker."""
    # 1. Queued with no worker running, then Redis loses it: the first worker's sweep queues it again.
    lost = faults.submit(small_recipe())
    lost_job = faults.row(lost["task_id"])["rq_job_id"]
    faults.redis.restart(wipe=True)
    worker = workers.start("--with-scheduler")
    assert wait_until(lambda: faults.row(lost["task_id"])["status"] in FINAL, timeout=60)
    row = faults.row(lost["task_id"])
    assert (row["status"], row["attempts"]) == ("complete", 1), row
    assert row["rq_job_id"] != lost_job, "it should have run under a new rq job"

    # 2. Under a running render, with one queued behind it: the render carries on (its heartbeat
    # comes back, so readers do not call it abandoned); the lost one is found once the worker is free.
    running = faults.submit(long_recipe(100))
    faults.wait_for(running["task_id"], lambda s: s["status"] == "processing" and s["stage"] == "video")
    behind = faults.submit(small_recipe())
    behind_job = faults.row(behind["task_id"])["rq_job_id"]
    faults.redis.restart(down_for=1, wipe=True)
    done = faults.wait_for(running["task_id"], lambda s: s["status"] in FINAL, timeout=180)
    assert done["status"] == "complete", done
    assert wait_until(lambda: faults.row(behind["task_id"])["status"] in FINAL, timeout=60)
    row = faults.row(behind["task_id"])
    assert row["status"] == "complete" and row["rq_job_id"] != behind_job, row

    # 3. Idle: Redis away for a few seconds, back empty; the worker waits, reaps its dead scheduler,
    # starts another and takes the next render.
    scheduler = scheduler_of(worker)
    assert scheduler is not None
    faults.redis.stop()
    assert wait_until(lambda: gone(scheduler), timeout=30), "the dead scheduler was left a zombie"
    assert worker.poll() is None
    faults.redis.restart(wipe=True)
    again = faults.submit(small_recipe())
    assert faults.wait_for(again["task_id"], lambda s: s["status"] in FINAL)["status"] == "complete"
    assert wait_until(lambda: scheduler_of(worker) is not None, timeout=20), "no new scheduler"
    assert worker.poll() is None and zombies_of(worker.pid) == []
