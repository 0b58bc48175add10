"""Renders whose worker or queue entry is gone: found, then queued again once or failed with a reason.

No render may stay "queued" or "processing" forever, whatever happened to Redis or a worker:

- "processing" without a heartbeat (``render:<id>:alive``) for ``RENDER_HEARTBEAT_TIMEOUT``
  seconds: the whole worker is gone (kill -9, OOM, a lost machine), so the render fails
  ("abandoned") and its partial files go. A dead work horse under a live worker is seen at
  once by the worker itself (``worker.py``); this is for a worker that died with it.
- "queued" whose rq job is gone from Redis (flushed, restarted without persistence), sits in
  no queue, or ended without the row hearing of it (rq fails a job stuck in its intermediate
  queue without calling back): the render is queued again, once, under a new rq job id
  (stage "requeued"); lost a second time it fails, with both reasons.

A missing heartbeat is believed only after it has stayed missing for the whole timeout,
counted from the first look that found it missing (``render:<id>:silent``): after a Redis
outage or restart the key is gone though the worker is fine, and it comes back within a
third of the timeout. A render younger than the timeout is never judged.

``settle`` runs on every read of a render (API, admin, event stream, through
``lifecycle.refresh``); ``sweep`` runs over every unfinished render in each worker, at start
and every ``RENDER_SWEEP_INTERVAL`` seconds, for the renders nobody looks at. Every change is
a conditional transition, so any number of readers and workers may race. Redis errors reach
the caller: with Redis down nothing can be known, so nothing is decided.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.cache import cache
from django.utils import timezone
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from . import job, progress
from .conf import conf
from .errors import REDIS_ERRORS
from .models import RenderJob, RenderStatus
from .redis_queue import enqueue_render, new_job_id, redis_connection
from .transitions import transition

# The stage of a render the queue lost once and that waits again; lost again, it fails.
REQUEUED = "requeued"
UNFINISHED = (RenderStatus.QUEUED, RenderStatus.PROCESSING)
# rq states in which a job is on its way to a worker.
WAITING = (JobStatus.SCHEDULED, JobStatus.DEFERRED)


def silent_key(render_id: object) -> str:
    """When a look first found the render's heartbeat missing (a timestamp; cleared when it returns)."""
    return f"render:{render_id}:silent"


def settle(render: RenderJob, now: datetime | None = None) -> RenderJob | None:
    """Fail or re-queue ``render`` if its worker or its rq job is gone; the changed row, else None."""
    if render.is_final or not render.started:
        return None
    now = now or timezone.now()
    grace = timedelta(seconds=conf.HEARTBEAT_TIMEOUT)
    if render.status == RenderStatus.PROCESSING:
        return _settle_silent_worker(render, now, grace)
    return _settle_lost_job(render, now, grace)


def sweep() -> list[RenderJob]:
    """Settle every unfinished render: what a worker does at start and every RENDER_SWEEP_INTERVAL."""
    now = timezone.now()
    unfinished = RenderJob.objects.filter(status__in=UNFINISHED).exclude(rq_job_id="")
    return [changed for render in unfinished.iterator() if (changed := settle(render, now)) is not None]


def _settle_silent_worker(render: RenderJob, now: datetime, grace: timedelta) -> RenderJob | None:
    """Fail a running render whose heartbeat has stayed missing for the whole timeout."""
    if not render.started_at or now - render.started_at <= grace:
        return None
    alive, silent = progress.heartbeat_key(render.pk), silent_key(render.pk)
    found = cache.get_many([alive, silent])
    if alive in found:
        if silent in found:
            cache.delete(silent)
        return None
    if silent not in found:
        cache.add(silent, now.timestamp(), timeout=3 * int(grace.total_seconds()) + 1)
        return None
    if now.timestamp() - float(found[silent]) < grace.total_seconds():
        return None
    failed = transition(
        render.pk, {"rq_job_id": render.rq_job_id, "status": RenderStatus.PROCESSING},
        status=RenderStatus.FAILED, finished_at=now,
        error=(f"abandoned: the worker stopped reporting during {render.stage or 'the render'} "
               f"at {render.progress:g}% (killed or lost); no heartbeat for {int(grace.total_seconds())} s"),
    )
    if failed is not None:
        job.remove_partial_files(render.pk)
        cache.delete(silent)
    return failed


def _settle_lost_job(render: RenderJob, now: datetime, grace: timedelta) -> RenderJob | None:
    """Queue a waiting render again whose rq job is lost; fail it if that already happened once."""
    if render.queued_at and now - render.queued_at <= grace:
        return None
    why = why_lost(render.rq_job_id, now, grace)
    if why is None:
        return None
    if render.stage == REQUEUED:
        return transition(
            render.pk, {"rq_job_id": render.rq_job_id, "status": RenderStatus.QUEUED},
            status=RenderStatus.FAILED, finished_at=now,
            error=f"lost from the queue twice ({render.error.removeprefix('queued again: ')}; then {why}); use Retry",
        )
    return requeue(render, why, now)


def why_lost(job_id: str, now: datetime, grace: timedelta) -> str | None:
    """Why the rq job of a queued render will never run it, or None while it is on its way."""
    connection = redis_connection()
    try:
        rq_job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return "its rq job is gone from Redis (flushed, or restarted without persistence)"
    status = rq_job.get_status(refresh=False)
    if status in WAITING:
        return None
    if status == JobStatus.QUEUED:
        queue = Queue(rq_job.origin, connection=connection)
        for key in (queue.key, queue.intermediate_queue_key):
            if connection.lpos(key, job_id) is not None:
                return None
        return f"its rq job is in no list of the {rq_job.origin!r} queue"
    if status == JobStatus.STARTED:
        started = rq_job.started_at
        if started is None or now - started <= grace:  # rq's times are aware (UTC)
            return None
        return "a worker took its rq job but died before the render began"
    return f"its rq job ended ({JobStatus(status).value}) without the render"


def requeue(render: RenderJob, why: str, now: datetime | None = None) -> RenderJob | None:
    """A new attempt of a render the queue lost, under a new rq job id (None: someone else did it)."""
    job_id = new_job_id(render.pk)
    queued = transition(
        render.pk, {"rq_job_id": render.rq_job_id, "status": render.status},
        status=RenderStatus.QUEUED, rq_job_id=job_id, stage=REQUEUED, progress=0.0,
        error=f"queued again: {why}", queued_at=now or timezone.now(), started_at=None,
    )
    if queued is None:
        return None
    try:
        enqueue_render(render.pk, job_id)
    except REDIS_ERRORS:
        # As it was, so that the next look tries again.
        RenderJob.objects.filter(pk=render.pk, rq_job_id=job_id).update(
            rq_job_id=render.rq_job_id, stage=render.stage, error=render.error, queued_at=render.queued_at,
        )
        raise
    return queued
