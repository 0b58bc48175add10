"""Render jobs on rq: start, run, cancel, and notice renders whose worker died.

Every state change is a conditional UPDATE on the row (``status`` and ``rq_job_id`` must
still be what this attempt expects), so a late worker, a cancel and an abandonment check
can race without a final state ever being overwritten.

- ``start`` gives a render a new attempt: the row first (queued, with the rq job id chosen
  here, so the progress URL exists at once), then ``Queue.enqueue``. Redis down ->
  ``QueueUnavailable`` (503) and the row goes back to "not started".
- ``run_render`` is the rq job: it claims the row, keeps a heartbeat key alive from a
  thread, renders in a working directory of its own under ``MEDIA_ROOT/renders/.work/``
  and moves the file into place only on success; the directory is removed in ``finally``.
- ``cancel`` cancels a queued rq job outright; a running render gets a flag in the cache
  that its progress logger reads a few times a second (the write loop raises, MoviePy
  closes its ffmpeg, the job ends "canceled"). This works the same in forking and
  in-process workers, and lets the job clean up after itself.
- ``refresh`` runs whenever the API or the admin reads a render: "processing" without a
  heartbeat for ``RENDER_HEARTBEAT_TIMEOUT`` seconds means the worker was killed (kill -9,
  OOM, a lost machine), so the render is marked failed and its partial files removed.
  rq's own maintenance reaches the same end later through ``on_render_failure``
  (``AbandonedJobError``), for renders nobody looks at.
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections
from django.db.models import F
from django.utils import timezone
from rq import Callback, Queue, Retry, Worker, get_current_job
from rq.exceptions import AbandonedJobError, InvalidJobOperation, NoSuchJobError
from rq.job import Job

from ..errors import TransformError
from ..sources import media_root
from .conf import conf
from .models import RenderJob, RenderStatus
from .progress import (
    RenderCanceled,
    RenderProgress,
    cancel_key,
    heartbeat_key,
    next_seq,
    read_snapshot,
    write_snapshot,
)

logger = logging.getLogger(__name__)

REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
RENDERS_DIR = "renders"
MAX_REASON = 2000


class QueueUnavailable(TransformError):
    """Redis (the queue and the progress cache) cannot be reached."""

    status = 503
    code = "queue_unavailable"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "5"}


class RenderConflict(TransformError):
    """The render is in a state where the operation makes no sense (cancel a complete render)."""

    status = 409
    code = "conflict"


_connections: dict[str, redis.Redis] = {}
_connections_lock = threading.Lock()


def queue_url() -> str:
    config = settings.RQ_QUEUES[conf.QUEUE]
    return config.get("URL") or settings.REDIS_URL


def redis_connection() -> redis.Redis:
    """One client per Redis URL per process (django-rq #210: never one per call)."""
    url = queue_url()
    with _connections_lock:
        client = _connections.get(url)
        if client is None:
            client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)
            _connections[url] = client
        return client


def render_queue() -> Queue:
    return Queue(conf.QUEUE, connection=redis_connection())


def renders_dir() -> Path:
    return media_root() / RENDERS_DIR


def work_dir(render_id: object) -> Path:
    """Where one render's partial output and MoviePy's temp audio live (hidden: never served)."""
    return renders_dir() / ".work" / str(render_id)


def remove_partial_files(render_id: object) -> None:
    shutil.rmtree(work_dir(render_id), ignore_errors=True)


def _reason(exc: BaseException, stage: str) -> str:
    message = str(exc) or type(exc).__name__
    return f"{type(exc).__name__} during {stage}: {message}"[:MAX_REASON]


def row_fields(render: RenderJob) -> dict[str, Any]:
    """The status fields as the database row has them (no live speed or ETA)."""
    return {
        "status": render.status,
        "progress": render.progress,
        "stage": render.stage,
        "fps": None,
        "eta_seconds": 0 if render.is_final else None,
        "error": render.error,
        "output": render.output,
    }


def publish_row(render: RenderJob) -> None:
    """Put the row's state in the cache so live readers see a transition at once (best effort)."""
    snapshot = {**row_fields(render), "seq": next_seq((read_snapshot_quietly(render.pk) or {}).get("seq", 0))}
    try:
        write_snapshot(render.pk, snapshot)
    except REDIS_ERRORS:
        logger.warning("render %s: could not publish %s to the cache", render.pk, render.status)


def read_snapshot_quietly(render_id: object) -> dict[str, Any] | None:
    try:
        return read_snapshot(render_id)
    except REDIS_ERRORS:
        return None


def _transition(render_id: object, expect: dict[str, Any], **changes: Any) -> RenderJob | None:
    """Apply ``changes`` only if the row still matches ``expect``; return the fresh row if it did."""
    updated = RenderJob.objects.filter(pk=render_id, **expect).update(**changes)
    if not updated:
        return None
    render = RenderJob.objects.get(pk=render_id)
    publish_row(render)
    return render


# --- starting -------------------------------------------------------------------------


def start(render: RenderJob) -> RenderJob:
    """Queue a new attempt of ``render``; raise QueueUnavailable when Redis cannot be reached."""
    if render.status in (RenderStatus.QUEUED, RenderStatus.PROCESSING) and render.started:
        raise RenderConflict(f"the render is already {render.status}")
    previous = render.rq_job_id
    job_id = f"render-{render.pk}-{uuid.uuid4().hex[:8]}"
    claimed = RenderJob.objects.filter(pk=render.pk, rq_job_id=previous).update(
        status=RenderStatus.QUEUED, rq_job_id=job_id, progress=0.0, stage="queued", error="", output="",
        queued_at=timezone.now(), started_at=None, finished_at=None,
    )
    if not claimed:
        raise RenderConflict("the render was started by someone else")
    retries = conf.RETRIES
    try:
        render_queue().enqueue(
            run_render,
            str(render.pk),
            job_id=job_id,
            job_timeout=conf.JOB_TIMEOUT,
            result_ttl=24 * 3600,
            failure_ttl=7 * 24 * 3600,
            retry=Retry(max=retries, interval=conf.RETRY_INTERVAL) if retries > 0 else None,
            on_failure=Callback(on_render_failure),
            on_stopped=Callback(on_render_stopped),
            description=f"render {render.pk}",
        )
    except REDIS_ERRORS as exc:
        RenderJob.objects.filter(pk=render.pk, rq_job_id=job_id).update(
            status=RenderStatus.QUEUED, rq_job_id="", stage="", queued_at=None
        )
        raise QueueUnavailable(f"the render queue (Redis) is unreachable: {exc}") from None
    render.refresh_from_db()
    publish_row(render)
    return render


# --- running (inside the rq worker) -----------------------------------------------------


class Heartbeat(threading.Thread):
    """Keeps ``render:<id>:alive`` in the cache while the render runs; it expires when the process dies."""

    def __init__(self, render_id: object) -> None:
        super().__init__(name=f"render-heartbeat-{render_id}", daemon=True)
        self.render_id = render_id
        self.timeout = max(1, conf.HEARTBEAT_TIMEOUT)
        self.stopped = threading.Event()

    def beat(self) -> None:
        try:
            cache.set(heartbeat_key(self.render_id), timezone.now().isoformat(), timeout=self.timeout)
        except REDIS_ERRORS:
            logger.warning("render %s: heartbeat not written (Redis unreachable)", self.render_id)

    def run(self) -> None:
        while not self.stopped.wait(self.timeout / 3):
            self.beat()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)
        try:
            cache.delete(heartbeat_key(self.render_id))
        except REDIS_ERRORS:
            pass


def run_render(render_id: str) -> str:
    """The rq job: render the row's recipe into MEDIA_ROOT/renders/<id>.<format>."""
    from .movie import render_recipe  # MoviePy is imported by workers only

    close_old_connections()
    job = get_current_job()
    job_id = job.id if job is not None else ""
    running = {"rq_job_id": job_id, "status": RenderStatus.PROCESSING}
    render = _transition(
        render_id,
        {"rq_job_id": job_id, "status": RenderStatus.QUEUED},
        status=RenderStatus.PROCESSING, started_at=timezone.now(), finished_at=None, attempts=F("attempts") + 1,
        stage="starting", progress=0.0, error="",
    )
    if render is None:
        return "skipped: the render was canceled, deleted or restarted"
    recipe = render.recipe
    fmt = recipe["format"]
    workdir = work_dir(render_id)
    remove_partial_files(render_id)
    workdir.mkdir(parents=True)
    partial = workdir / f"partial.{fmt}"
    final = renders_dir() / f"{render_id}.{fmt}"
    heartbeat = Heartbeat(render_id)
    heartbeat.beat()
    heartbeat.start()

    def checkpoint(percent: float, stage: str) -> None:
        RenderJob.objects.filter(pk=render_id, **running).update(progress=percent, stage=stage)

    progress = RenderProgress(render_id, on_checkpoint=checkpoint)
    try:
        progress.publish()
        render_recipe(recipe, partial, workdir, progress, on_plan=progress.set_plan)
        final.parent.mkdir(parents=True, exist_ok=True)
        partial.replace(final)
        done = _transition(
            render_id, running, status=RenderStatus.COMPLETE, progress=100.0, stage="done",
            output=f"{RENDERS_DIR}/{final.name}", finished_at=timezone.now(),
        )
        if done is None:
            final.unlink(missing_ok=True)  # canceled or abandoned meanwhile: the file has no owner
            return "discarded"
        return done.output
    except RenderCanceled as exc:
        _transition(render_id, running, status=RenderStatus.CANCELED, stage=progress.stage,
                    progress=progress.percent, error=str(exc), finished_at=timezone.now())
        return "canceled"
    except Exception as exc:
        reason = _reason(exc, progress.stage)
        if job is not None and job.retries_left:
            _transition(render_id, running, status=RenderStatus.QUEUED, stage="retrying",
                        error=f"attempt failed, retrying: {reason}", queued_at=timezone.now())
        else:
            _transition(render_id, running, status=RenderStatus.FAILED, stage=progress.stage,
                        progress=progress.percent, error=reason, finished_at=timezone.now())
        logger.warning("render %s failed: %s", render_id, reason)
        raise
    finally:
        heartbeat.stop()
        remove_partial_files(render_id)
        try:
            cache.delete(cancel_key(render_id))
        except REDIS_ERRORS:
            pass


def _render_id_of(job: Job) -> str | None:
    return str(job.args[0]) if job.args else None


def on_render_failure(job: Job, connection: Any, exc_type: type, exc_value: BaseException, tb: Any) -> None:
    """rq callback: a job that died outside ``run_render``'s own handling (abandoned, hard timeout)."""
    render_id = _render_id_of(job)
    if render_id is None:
        return
    close_old_connections()
    running = {"rq_job_id": job.id, "status": RenderStatus.PROCESSING}
    if issubclass(exc_type, AbandonedJobError):
        reason = "the worker running this render died (abandoned job)"
    else:
        reason = f"{exc_type.__name__}: {exc_value}"[:MAX_REASON]
    if job.retries_left:
        changed = _transition(render_id, running, status=RenderStatus.QUEUED, stage="retrying",
                              error=f"attempt failed, retrying: {reason}", queued_at=timezone.now())
    else:
        changed = _transition(render_id, running, status=RenderStatus.FAILED, error=reason,
                              finished_at=timezone.now())
    if changed is not None:
        remove_partial_files(render_id)


def on_render_stopped(job: Job, connection: Any) -> None:
    """rq callback: the job was stopped with rq's stop command (e.g. from the django-rq dashboard)."""
    render_id = _render_id_of(job)
    if render_id is None:
        return
    close_old_connections()
    changed = _transition(render_id, {"rq_job_id": job.id, "status": RenderStatus.PROCESSING},
                          status=RenderStatus.CANCELED, error="stopped by rq's stop command",
                          finished_at=timezone.now())
    if changed is not None:
        remove_partial_files(render_id)


# --- reading and canceling (web processes) ----------------------------------------------


def refresh(render: RenderJob) -> RenderJob:
    """Settle a render whose worker or queue entry is gone; leave it alone when Redis is down."""
    if render.is_final or not render.started:
        return render
    timeout = timedelta(seconds=conf.HEARTBEAT_TIMEOUT)
    now = timezone.now()
    try:
        if render.status == RenderStatus.PROCESSING:
            if render.started_at and now - render.started_at > timeout and cache.get(heartbeat_key(render.pk)) is None:
                failed = _transition(
                    render.pk, {"rq_job_id": render.rq_job_id, "status": RenderStatus.PROCESSING},
                    status=RenderStatus.FAILED, finished_at=now,
                    error=(f"abandoned: the worker stopped reporting during {render.stage or 'the render'} "
                           f"at {render.progress:g}% (killed or lost); no heartbeat for {timeout.seconds} s"),
                )
                if failed is not None:
                    remove_partial_files(render.pk)
                    return failed
        elif render.queued_at and now - render.queued_at > timeout:
            if not Job.exists(render.rq_job_id, connection=redis_connection()):
                lost = _transition(
                    render.pk, {"rq_job_id": render.rq_job_id, "status": RenderStatus.QUEUED},
                    status=RenderStatus.FAILED, finished_at=now,
                    error="lost from the queue (Redis was flushed or restarted); use Retry",
                )
                if lost is not None:
                    return lost
    except REDIS_ERRORS:
        return render
    render.refresh_from_db()
    return render


def cancel(render: RenderJob) -> RenderJob:
    """Cancel a render: at once when it is waiting, within a second or two when it is running."""
    if render.is_final:
        raise RenderConflict(f"the render is already {render.status}")
    now = timezone.now()
    if not render.started:
        canceled = _transition(render.pk, {"rq_job_id": "", "status": RenderStatus.QUEUED},
                               status=RenderStatus.CANCELED, error="canceled before it was started", finished_at=now)
        return canceled or RenderJob.objects.get(pk=render.pk)
    try:
        if render.status == RenderStatus.QUEUED:
            try:
                Job.fetch(render.rq_job_id, connection=redis_connection()).cancel()
            except (NoSuchJobError, InvalidJobOperation):
                pass
            canceled = _transition(render.pk, {"rq_job_id": render.rq_job_id, "status": RenderStatus.QUEUED},
                                   status=RenderStatus.CANCELED, error="canceled while queued", finished_at=now)
            if canceled is not None:
                return canceled
        cache.set(cancel_key(render.pk), 1, timeout=conf.JOB_TIMEOUT + 60)
    except REDIS_ERRORS as exc:
        raise QueueUnavailable(f"the render queue (Redis) is unreachable: {exc}") from None
    return refresh(RenderJob.objects.get(pk=render.pk))


def live_status(render: RenderJob) -> dict[str, Any]:
    """The fields of DESIGN.md's status object: the row, overlaid with the live snapshot while running."""
    changed = render.finished_at or render.started_at or render.queued_at or render.created_at
    fields = {**row_fields(render), "seq": int(changed.timestamp() * 1000)}
    if render.status == RenderStatus.PROCESSING:
        snapshot = read_snapshot_quietly(render.pk)
        if snapshot and snapshot.get("status") == RenderStatus.PROCESSING:
            fields.update({key: snapshot.get(key) for key in ("progress", "stage", "fps", "eta_seconds")})
            fields["progress"] = max(fields["progress"] or 0.0, render.progress)
            fields["seq"] = max(fields["seq"], int(snapshot.get("seq", 0)))
    return fields


def redis_reachable() -> bool:
    try:
        return bool(redis_connection().ping())
    except REDIS_ERRORS:
        return False


class RenderWorker(Worker):
    """An rq worker that imports MoviePy once, before it forks, so a job starts rendering at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from . import movie  # noqa: F401

