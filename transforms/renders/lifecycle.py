"""A render's life as the web side drives it: start, cancel, settle the lost ones, read.

Every state change goes through ``transitions.transition`` (a conditional UPDATE that
is then published), so these can race with the worker (``job.py``) safely.

- ``start`` gives a render a new attempt: the row first (queued, with the rq job id chosen
  here, so the progress URL exists at once), then ``Queue.enqueue``. Redis down ->
  ``QueueUnavailable`` (503) and the row goes back to "not started".
- ``cancel`` cancels a queued rq job outright; a running render gets a flag in the cache
  that its progress logger reads a few times a second (the write loop raises, MoviePy
  closes its ffmpeg, the job ends "canceled"). This works the same in forking and
  in-process workers, and lets the job clean up after itself.
- ``refresh`` runs whenever the API or the admin reads a render: a render whose worker or rq
  job is gone is failed or queued again (``recovery.settle``: a silent heartbeat, a job lost
  from Redis). Workers sweep the renders nobody reads the same way (``recovery.sweep``).
- ``live_status`` is what a reader sees: the row, with the live snapshot laid over it.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.utils import timezone
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job

from . import progress, recovery
from .conf import conf
from .errors import REDIS_ERRORS, QueueUnavailable, RenderConflict
from .models import RenderJob, RenderStatus
from .redis_queue import enqueue_render, new_job_id, redis_connection
from .transitions import publish_row, row_fields, transition


def start(render: RenderJob) -> RenderJob:
    """Queue a new attempt of ``render``; raise QueueUnavailable when Redis cannot be reached."""
    if render.status in (RenderStatus.QUEUED, RenderStatus.PROCESSING) and render.started:
        raise RenderConflict(f"the render is already {render.status}")
    previous = render.rq_job_id
    job_id = new_job_id(render.pk)
    claimed = RenderJob.objects.filter(pk=render.pk, rq_job_id=previous).update(
        status=RenderStatus.QUEUED, rq_job_id=job_id, progress=0.0, stage="queued", error="", output="",
        queued_at=timezone.now(), started_at=None, finished_at=None,
    )
    if not claimed:
        raise RenderConflict("the render was started by someone else")
    try:
        enqueue_render(render.pk, job_id)
    except REDIS_ERRORS as exc:
        RenderJob.objects.filter(pk=render.pk, rq_job_id=job_id).update(
            status=RenderStatus.QUEUED, rq_job_id="", stage="", queued_at=None
        )
        raise QueueUnavailable(exc) from None
    render.refresh_from_db()
    publish_row(render)
    return render


def refresh(render: RenderJob) -> RenderJob:
    """Settle a render whose worker or queue entry is gone; leave it alone when Redis is down."""
    if render.is_final or not render.started:
        return render
    try:
        settled = recovery.settle(render)
    except REDIS_ERRORS:
        return render
    if settled is not None:
        return settled
    render.refresh_from_db()
    return render


def cancel(render: RenderJob) -> RenderJob:
    """Cancel a render: at once when it is waiting, within a second or two when it is running."""
    if render.is_final:
        raise RenderConflict(f"the render is already {render.status}")
    now = timezone.now()
    if not render.started:
        canceled = transition(render.pk, {"rq_job_id": "", "status": RenderStatus.QUEUED},
                              status=RenderStatus.CANCELED, error="canceled before it was started", finished_at=now)
        return canceled or RenderJob.objects.get(pk=render.pk)
    try:
        if render.status == RenderStatus.QUEUED:
            try:
                Job.fetch(render.rq_job_id, connection=redis_connection()).cancel()
            except (NoSuchJobError, InvalidJobOperation):
                pass
            canceled = transition(render.pk, {"rq_job_id": render.rq_job_id, "status": RenderStatus.QUEUED},
                                  status=RenderStatus.CANCELED, error="canceled while queued", finished_at=now)
            if canceled is not None:
                return canceled
        cache.set(progress.cancel_key(render.pk), 1, timeout=conf.JOB_TIMEOUT + 60)
    except REDIS_ERRORS as exc:
        raise QueueUnavailable(exc) from None
    return refresh(RenderJob.objects.get(pk=render.pk))


def live_status(render: RenderJob) -> dict[str, Any]:
    """The fields of DESIGN.md's status object, with ``seq``: the row, overlaid with the live snapshot."""
    changed = render.finished_at or render.started_at or render.queued_at or render.created_at
    return progress.live_fields(row_fields(render), changed, progress.read_snapshot_quietly(render.pk))
