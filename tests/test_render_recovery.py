"""Renders the queue lost and Redis going away under a render, in-process against a real Redis:
``recovery`` (queued again once, then failed; a silent heartbeat believed only after the whole
timeout), the progress logger riding out an outage, and a bare ``rqworker`` taking renders.
The database tests run on SQLite and on PostgreSQL (the ``database`` fixture). The same faults
with real processes and a Redis stopped under them are in test_render_faults.py.
"""

from __future__ import annotations

import pytest

from tests.render_helpers import closed_port_url, run_worker
from transforms.renders import lifecycle, redis_queue
from transforms.renders.models import RenderJob
from transforms.renders.recipes import validate_recipe


@pytest.mark.django_db(transaction=True)
def test_the_database_fixture_writes_where_it_says(database):
    from django.db import connections

    row = RenderJob.objects.create(recipe={"clips": []})
    assert connections[row._state.db].vendor == {"sqlite": "sqlite", "postgres": "postgresql"}[database]
    assert RenderJob.objects.filter(pk=row.pk).exists()


def backdate(render: RenderJob, seconds: float = 60) -> RenderJob:
    """As if the render had been queued (and started) ``seconds`` ago: older than any grace period."""
    from datetime import timedelta

    from django.utils import timezone

    then = timezone.now() - timedelta(seconds=seconds)
    RenderJob.objects.filter(pk=render.pk).update(queued_at=then, started_at=then)
    return RenderJob.objects.get(pk=render.pk)


def new_render(recipe: dict | None = None) -> RenderJob:
    return lifecycle.start(RenderJob.objects.create(recipe=validate_recipe(recipe or {"clips": [{"title": "x"}]})))


@pytest.mark.django_db(transaction=True)
def test_a_render_lost_from_redis_is_queued_again_once_then_failed(database, sources, rq_redis):
    import redis

    flush = redis.Redis.from_url(rq_redis).flushall
    render = new_render()
    first_job = render.rq_job_id
    flush()  # Redis restarted without persistence
    young = lifecycle.refresh(RenderJob.objects.get(pk=render.pk))
    assert (young.status, young.rq_job_id) == ("queued", first_job), "a render younger than the timeout is left"
    again = lifecycle.refresh(backdate(render))
    assert (again.status, again.stage) == ("queued", "requeued")
    assert again.rq_job_id != first_job and again.rq_job_id in redis_queue.render_queue().job_ids
    assert again.error.startswith("queued again: its rq job is gone from Redis")
    flush()
    failed = lifecycle.refresh(backdate(again))
    assert failed.status == "failed" and failed.error.startswith("lost from the queue twice"), failed.error
    assert failed.finished_at is not None
    run_worker()
    assert RenderJob.objects.get(pk=render.pk).status == "failed"


@pytest.mark.django_db(transaction=True)
def test_the_sweep_settles_only_the_renders_whose_jobs_will_never_run_them(database, sources, rq_redis):
    """A worker's sweep: jobs rq ended without the row hearing of it, or in no queue, are queued again."""
    from rq.job import Job, JobStatus

    from transforms.renders import recovery

    connection = redis_queue.redis_connection()
    queue = redis_queue.render_queue()
    waiting, scheduled, ended, unlisted, young = (new_render() for _ in range(5))
    for render in (waiting, scheduled, ended, unlisted):
        backdate(render)
    Job.fetch(scheduled.rq_job_id, connection=connection).set_status(JobStatus.SCHEDULED)
    queue.remove(scheduled.rq_job_id)
    Job.fetch(ended.rq_job_id, connection=connection).set_status(JobStatus.FAILED)  # e.g. "stuck in intermediate queue"
    queue.remove(ended.rq_job_id)
    queue.remove(unlisted.rq_job_id)
    queue.remove(young.rq_job_id)

    settled = {render.pk: render for render in recovery.sweep()}
    assert set(settled) == {ended.pk, unlisted.pk}
    assert "its rq job ended (failed) without the render" in settled[ended.pk].error
    assert "in no list of the 'default' queue" in settled[unlisted.pk].error
    for render in (waiting, scheduled, young):
        assert RenderJob.objects.get(pk=render.pk).rq_job_id == render.rq_job_id
    assert {settled[ended.pk].rq_job_id, settled[unlisted.pk].rq_job_id} <= set(queue.job_ids)


@pytest.mark.django_db(transaction=True)
def test_a_missing_heartbeat_is_believed_only_after_the_whole_timeout(database, sources, rq_redis):
    """After a Redis outage or restart the heartbeat key is gone though the worker is fine: wait and see."""
    import time

    from django.core.cache import cache

    from transforms.renders.conf import conf
    from transforms.renders.progress import heartbeat_key
    from transforms.renders.recovery import silent_key

    render = new_render()
    RenderJob.objects.filter(pk=render.pk).update(status="processing", stage="video", progress=40.0)
    render = backdate(render)
    assert lifecycle.refresh(render).status == "processing"  # first seen missing: a stamp, no verdict
    assert cache.get(silent_key(render.pk)) is not None
    cache.set(heartbeat_key(render.pk), "alive")  # the worker writes again
    assert lifecycle.refresh(render).status == "processing"
    assert cache.get(silent_key(render.pk)) is None
    cache.delete(heartbeat_key(render.pk))
    lifecycle.refresh(render)
    cache.set(silent_key(render.pk), time.time() - conf.HEARTBEAT_TIMEOUT - 1)
    failed = lifecycle.refresh(render)
    assert failed.status == "failed" and failed.error.startswith("abandoned: the worker stopped reporting during video")


def test_progress_writes_that_fail_are_dropped_and_tried_again_later(rq_redis, settings):
    """Redis away mid-render: no exception reaches MoviePy, the row still gets its tenths, writes resume."""
    from transforms.renders.progress import RenderProgress, read_snapshot

    working = settings.CACHES
    now = [0.0]
    checkpoints: list[float] = []
    logger = RenderProgress("outage", on_checkpoint=lambda p, s: checkpoints.append(p), interval=0.25,
                            clock=lambda: now[0])
    logger.bars_callback("frame_index", "total", 100)
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": closed_port_url()}}
    for index in range(30):  # 30 frames, 0.1 s apart: 3 s without Redis
        now[0] += 0.1
        logger.bars_callback("frame_index", "index", index)
    assert logger.dropped > 0 and logger.writes == 0
    assert [int(percent // 10) for percent in checkpoints] == [1, 2]  # the row's copy needs no Redis
    settings.CACHES = working
    logger.bars_callback("frame_index", "index", 30)  # still backing off: no try yet
    assert read_snapshot("outage") is None
    now[0] += 2
    logger.bars_callback("frame_index", "index", 31)
    assert read_snapshot("outage")["progress"] == 32.0 and logger.writes == 1


def test_a_bare_rqworker_takes_renders(rq_redis, settings):
    """DESIGN.md: `python manage.py rqworker`, with no arguments, must take render jobs."""
    from django_rq.workers import get_worker

    from transforms.renders.checks import check_render_queue
    from transforms.renders.worker import RenderWorker

    worker = get_worker()  # what the management command builds from no arguments
    assert isinstance(worker, RenderWorker)
    assert worker.queue_names() == [redis_queue.render_queue().name] == ["default"]
    assert check_render_queue() == []
    settings.RENDER_QUEUE = "renders"
    assert [message.id for message in check_render_queue()] == ["transforms.W021"]
