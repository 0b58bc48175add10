"""The rq job that runs a render in the worker, and rq's callbacks for it.

``run_render`` claims the row (queued -> processing, only for the rq job the row names),
keeps a heartbeat key alive from a thread, renders in a working directory of its own under
``MEDIA_ROOT/renders/.work/`` and moves the file into place only on success; the
directory is removed in ``finally``, whatever happened. Its progress logger publishes
the live snapshot and stops the write when the cancel flag is set (``progress.py``).

rq calls ``on_render_failure`` for a job that died outside ``run_render``'s own handling
(a hard timeout, or ``AbandonedJobError`` from its maintenance once a worker vanished)
and ``on_render_stopped`` after its stop command; the worker (``worker.py``) calls
``on_horse_death`` when the process running a render dies. All end the attempt the same way.
"""

from __future__ import annotations

import logging
import shutil
import threading
from contextlib import suppress
from pathlib import Path
from typing import Any

from django.core.cache import cache
from django.db import close_old_connections
from django.db.models import F
from django.utils import timezone
from rq import get_current_job
from rq.exceptions import AbandonedJobError
from rq.job import Job

from ..sources import media_root
from .conf import conf
from .errors import REDIS_ERRORS
from .models import RenderJob, RenderStatus
from .progress import RenderCanceled, RenderProgress, cancel_key, heartbeat_key
from .transitions import transition

logger = logging.getLogger(__name__)

RENDERS_DIR = "renders"
MAX_REASON = 2000


def renders_dir() -> Path:
    return media_root() / RENDERS_DIR


def work_dir(render_id: object) -> Path:
    """Where one render's partial output and MoviePy's temp audio live (hidden: never served)."""
    return renders_dir() / ".work" / str(render_id)


def remove_partial_files(render_id: object) -> None:
    shutil.rmtree(work_dir(render_id), ignore_errors=True)


class Heartbeat(threading.Thread):
    """Keeps ``render:<id>:alive`` in the cache while the render runs; it expires when the process dies."""

    def __init__(self, render_id: object) -> None:
        super().__init__(name=f"render-heartbeat-{render_id}", daemon=True)
        self.render_id = render_id
        self.timeout = max(1, conf.HEARTBEAT_TIMEOUT)
        self.stopped = threading.Event()
        self.failing = False

    def beat(self) -> None:
        """Write the key; while Redis is away, say so once and keep trying at the same pace."""
        try:
            cache.set(heartbeat_key(self.render_id), timezone.now().isoformat(), timeout=self.timeout)
        except REDIS_ERRORS as exc:
            if not self.failing:
                logger.warning("render %s: heartbeat not written, Redis unreachable (%s); retrying",
                               self.render_id, exc)
            self.failing = True
            return
        if self.failing:
            logger.info("render %s: heartbeat written again", self.render_id)
        self.failing = False

    def run(self) -> None:
        while not self.stopped.wait(self.timeout / 3):
            self.beat()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)
        with suppress(*REDIS_ERRORS):
            cache.delete(heartbeat_key(self.render_id))


def _reason(exc: BaseException, stage: str) -> str:
    message = str(exc) or type(exc).__name__
    return f"{type(exc).__name__} during {stage}: {message}"[:MAX_REASON]


def _running(job_id: str) -> dict[str, Any]:
    """What the row says while this attempt owns it: the condition of every transition it makes."""
    return {"rq_job_id": job_id, "status": RenderStatus.PROCESSING}


def _fail_attempt(render_id: object, job_id: str, reason: str, retry: bool, **final: Any) -> RenderJob | None:
    """End a failed attempt: back in the queue when rq will try again, else failed for good."""
    if retry:
        return transition(render_id, _running(job_id), status=RenderStatus.QUEUED, stage="retrying",
                          error=f"attempt failed, retrying: {reason}", queued_at=timezone.now())
    return transition(render_id, _running(job_id), status=RenderStatus.FAILED, error=reason,
                      finished_at=timezone.now(), **final)


def run_render(render_id: str) -> str:
    """The rq job: render the row's recipe into MEDIA_ROOT/renders/<id>.<format>."""
    close_old_connections()
    job = get_current_job()
    job_id = job.id if job is not None else ""
    render = transition(
        render_id,
        {"rq_job_id": job_id, "status": RenderStatus.QUEUED},
        status=RenderStatus.PROCESSING, started_at=timezone.now(), finished_at=None, attempts=F("attempts") + 1,
        stage="starting", progress=0.0, error="",
    )
    if render is None:
        return "skipped: the render was canceled, deleted or restarted"
    heartbeat = Heartbeat(render_id)
    heartbeat.beat()
    heartbeat.start()

    def checkpoint(percent: float, stage: str) -> None:
        RenderJob.objects.filter(pk=render_id, **_running(job_id)).update(progress=percent, stage=stage)

    progress = RenderProgress(render_id, on_checkpoint=checkpoint)
    try:
        return _write(render_id, render.recipe, progress, job_id)
    except RenderCanceled as exc:
        transition(render_id, _running(job_id), status=RenderStatus.CANCELED, stage=progress.stage,
                   progress=progress.percent, error=str(exc), finished_at=timezone.now())
        return "canceled"
    except Exception as exc:
        reason = _reason(exc, progress.stage)
        _fail_attempt(render_id, job_id, reason, retry=bool(job is not None and job.retries_left),
                      stage=progress.stage, progress=progress.percent)
        logger.warning("render %s failed: %s", render_id, reason)
        raise
    finally:
        heartbeat.stop()
        remove_partial_files(render_id)
        with suppress(*REDIS_ERRORS):
            cache.delete(cancel_key(render_id))


def _write(render_id: str, recipe: dict[str, Any], progress: RenderProgress, job_id: str) -> str:
    """Render into the work directory, then move the file into place if this attempt still owns the row."""
    from .movie import render_recipe  # MoviePy is imported by workers only

    fmt = recipe["format"]
    workdir = work_dir(render_id)
    remove_partial_files(render_id)
    workdir.mkdir(parents=True)
    partial = workdir / f"partial.{fmt}"
    final = renders_dir() / f"{render_id}.{fmt}"
    progress.report()
    render_recipe(recipe, partial, workdir, progress, on_plan=progress.set_plan)
    final.parent.mkdir(parents=True, exist_ok=True)
    partial.replace(final)
    done = transition(
        render_id, _running(job_id), status=RenderStatus.COMPLETE, progress=100.0, stage="done",
        output=f"{RENDERS_DIR}/{final.name}", finished_at=timezone.now(),
    )
    if done is None:
        final.unlink(missing_ok=True)  # canceled or abandoned meanwhile: the file has no owner
        return "discarded"
    return done.output


def _render_id_of(job: Job) -> str | None:
    return str(job.args[0]) if job.args else None


def on_render_failure(job: Job, connection: Any, exc_type: type, exc_value: BaseException, tb: Any) -> None:
    """rq callback: a job that died outside ``run_render``'s own handling (abandoned, hard timeout)."""
    render_id = _render_id_of(job)
    if render_id is None:
        return
    close_old_connections()
    if issubclass(exc_type, AbandonedJobError):
        reason = "the worker running this render died (abandoned job)"
    else:
        reason = f"{exc_type.__name__}: {exc_value}"[:MAX_REASON]
    if _fail_attempt(render_id, job.id, reason, retry=bool(job.retries_left)) is not None:
        remove_partial_files(render_id)


def on_horse_death(job: Job, how: str) -> RenderJob | None:
    """The worker saw the work horse running ``job`` die (``how``: killed by a signal, exit status).

    Called by the worker's parent process the moment ``wait4`` returns, Redis or not, so the
    render is failed (or back in the queue when rq will retry) at once instead of after the
    heartbeat timeout.
    """
    render_id = _render_id_of(job)
    if render_id is None:
        return None
    close_old_connections()
    row = RenderJob.objects.filter(pk=render_id).values("stage", "progress").first() or {}
    reason = (f"the work horse running this render died ({how}) during {row.get('stage') or 'the render'}"
              f" at {row.get('progress', 0.0):g}%")
    ended = _fail_attempt(render_id, job.id, reason, retry=bool(job.retries_left))
    if ended is not None:
        remove_partial_files(render_id)
    return ended


def on_render_stopped(job: Job, connection: Any) -> None:
    """rq callback: the job was stopped with rq's stop command (e.g. from the django-rq dashboard)."""
    render_id = _render_id_of(job)
    if render_id is None:
        return
    close_old_connections()
    changed = transition(render_id, _running(job.id), status=RenderStatus.CANCELED,
                         error="stopped by rq's stop command", finished_at=timezone.now())
    if changed is not None:
        remove_partial_files(render_id)
