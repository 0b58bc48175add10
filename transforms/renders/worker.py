"""The render worker: rq's forking ``Worker`` that waits through Redis outages and sees a dead render at once.

Every ``manage.py rqworker`` is one (``RQ["WORKER_CLASS"]`` in the settings). What it adds
to rq 3's worker, and why:

- MoviePy is imported once, before the fork, so a job starts rendering at once.
- Redis away for a while (a restart, a failover, a network cut): rq's worker quits on the
  first Redis error outside its dequeue ("found an unhandled exception, quitting"), and the
  render in flight is failed or lost with it. Here each Redis step either waits for Redis
  (0.5 s, 1 s, 2 s... up to ``RENDER_REDIS_RETRY_MAX``) and goes on, or is bookkeeping that
  may be skipped once (heartbeats, the worker's state). The work horse waits the same way
  before it records its job's start and end, so a render in flight finishes and is
  recorded when Redis is back, and jobs queued meanwhile start then.
- rq's scheduler process dies with the first Redis error and stays a zombie: it is reaped
  at the next turn of the loop and started again once Redis answers.
- After Redis lost its data (a restart without persistence, a flush) the worker registers
  itself again, and its sweep (``recovery.sweep``, at start and every
  ``RENDER_SWEEP_INTERVAL`` seconds) queues again or fails the renders whose jobs are gone.
  The idle wait for a job is cut to that interval so the sweep runs on time.
- A work horse that dies (kill -9, the OOM killer, a crash) fails its render the moment the
  parent's ``wait4`` returns, with the signal in the reason (``job.on_horse_death``), Redis or
  not, and what it left in its process group (ffmpeg) is killed.
- Database connections are closed before each fork: one connection used by both parent and
  horse (a PostgreSQL socket) is corrupted by both.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from contextlib import suppress
from functools import partial
from typing import Any, TypeVar

from django.db import DatabaseError, connections
from rq import Queue, Worker, worker_registration
from rq.exceptions import StopRequested
from rq.executions import Execution
from rq.job import Job
from rq.worker import WorkerStatus

from . import job as render_job
from . import recovery
from .conf import conf
from .errors import REDIS_ERRORS

T = TypeVar("T")
# The first wait after a failed Redis call; each next one is twice as long, up to RENDER_REDIS_RETRY_MAX.
FIRST_WAIT = 0.5
# Seconds between the parent's heartbeats while a horse works (rq's default is 30): also how
# soon a scheduler that died during a long render is reaped.
MONITORING_INTERVAL = 10


def exit_reason(status: int) -> str:
    """A wait status in words: "killed by SIGKILL", "exit status 1"."""
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


class RenderWorker(Worker):
    """rq's forking worker for renders (see the module's docstring for what it adds)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("job_monitoring_interval", MONITORING_INTERVAL)
        self._redis_lost_at: float | None = None
        super().__init__(*args, **kwargs)
        from . import movie  # noqa: F401  (imported once, before the fork)

        self._last_sweep: float | None = None
        self._job_in_hand: Job | None = None
        self._horse_exit: tuple[int, int] | None = None
        self._reported_scheduler: int | None = None
        self._tends_scheduler = False

    # --- waiting for Redis -------------------------------------------------------------------

    @property
    def max_connection_wait_time(self) -> float:
        """The cap of rq's own backoff in its dequeue loop: a job queued meanwhile starts soon after."""
        return float(conf.REDIS_RETRY_MAX)

    @property
    def dequeue_timeout(self) -> int:
        """Wake up at least every RENDER_SWEEP_INTERVAL when idle, for the sweep and the scheduler."""
        return max(1, min(super().dequeue_timeout, int(conf.SWEEP_INTERVAL)))

    def _through_outage(self, doing: str, call: Callable[[], T]) -> T:
        """``call()``, tried again while Redis is unreachable; a stop request ends the wait in the parent."""
        wait = FIRST_WAIT
        while True:
            try:
                result = call()
            except REDIS_ERRORS as exc:
                if self._stop_requested and not self.is_horse:
                    raise StopRequested() from None
                self._redis_unreachable(doing, exc)
                time.sleep(wait)
                wait = min(wait * 2, float(conf.REDIS_RETRY_MAX))
                continue
            self._redis_back()
            return result

    def _redis_unreachable(self, doing: str, exc: BaseException) -> None:
        """Say once per outage that Redis went away."""
        if self._redis_lost_at is None:
            self._redis_lost_at = time.monotonic()
            self.log.warning("Worker %s: Redis unreachable while %s (%s); waiting for it", self.name, doing, exc)

    def _redis_back(self) -> None:
        if self._redis_lost_at is not None:
            self.log.info("Worker %s: Redis is back after %.1f s", self.name, time.monotonic() - self._redis_lost_at)
            self._redis_lost_at = None

    # --- start-up and bookkeeping that must not kill the worker ------------------------------------

    def _set_ip_address(self, connection: Any) -> None:
        try:
            super()._set_ip_address(connection)
        except REDIS_ERRORS:
            self.ip_address = "unknown"

    def register_birth(self) -> None:
        self._through_outage("registering", super().register_birth)

    def subscribe(self) -> None:
        self._through_outage("subscribing to its command channel", super().subscribe)

    def check_for_suspension(self, burst: bool) -> None:
        self._through_outage("checking for suspension", partial(super().check_for_suspension, burst))

    def _quietly(self, doing: str, call: Callable[[], Any]) -> None:
        """Bookkeeping that may be skipped while Redis is away; the next call puts it right."""
        try:
            call()
        except REDIS_ERRORS as exc:
            self._redis_unreachable(doing, exc)
        else:
            self._redis_back()

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if pipeline is not None:
            super().heartbeat(timeout, pipeline=pipeline)
        else:
            self._quietly("sending its heartbeat", partial(super().heartbeat, timeout))

    def set_state(self, state: str, pipeline: Any = None) -> None:
        if pipeline is not None:
            super().set_state(state, pipeline=pipeline)
        else:
            self._quietly("recording its state", partial(super().set_state, state))

    def set_shutdown_requested_date(self) -> None:
        self._quietly("recording a shutdown request", super().set_shutdown_requested_date)

    def maintain_heartbeats(self, job: Job, execution: Execution) -> None:
        self._quietly("sending heartbeats", partial(super().maintain_heartbeats, job, execution))
        self._quietly("looking after its scheduler", self._tend_scheduler)

    def _start_scheduler(self, burst: bool = False, *args: Any, **kwargs: Any) -> None:
        self._tends_scheduler = not burst  # a burst worker's scheduler runs once, in-process
        self._quietly("starting its scheduler", partial(super()._start_scheduler, burst, *args, **kwargs))

    def teardown(self) -> None:
        self._quietly("recording its death", super().teardown)

    # --- maintenance: the scheduler, the registration, the sweep for lost renders --------------------

    @property
    def should_run_maintenance_tasks(self) -> bool:
        return super().should_run_maintenance_tasks or self._sweep_due() or self._scheduler_down()

    def run_maintenance_tasks(self) -> None:
        try:
            self._tend_scheduler()
            if super().should_run_maintenance_tasks:
                super().run_maintenance_tasks()
            self._ensure_registered()
            if self._sweep_due():
                self._sweep()
        except REDIS_ERRORS as exc:
            self._redis_unreachable("running its maintenance", exc)

    def _sweep_due(self) -> bool:
        return self._last_sweep is None or time.monotonic() - self._last_sweep >= conf.SWEEP_INTERVAL

    def _sweep(self) -> None:
        """Queue again or fail the renders the queue lost (Redis errors reach the caller: try again soon)."""
        try:
            settled = recovery.sweep()
        except DatabaseError as exc:
            self.log.warning("Worker %s: could not look for lost renders: %s", self.name, exc)
            settled = []
        finally:
            connections.close_all()  # never carry a connection into the next fork
        self._last_sweep = time.monotonic()
        for render in settled:
            self.log.warning("Worker %s: render %s was lost: now %s (%s)", self.name, render.pk, render.status,
                             render.error)

    def _scheduler_down(self) -> bool:
        """Whether this worker should run a scheduler and none is alive (``is_alive`` reaps a dead one)."""
        if self.scheduler is None or self._stop_requested or not self._tends_scheduler:
            return False
        process = self.scheduler._process
        return process is None or not process.is_alive()

    def _tend_scheduler(self) -> None:
        """Reap a scheduler process that exited, and start another (when this worker gets the lock)."""
        if not self._scheduler_down():
            return
        process = self.scheduler._process
        if process is not None and self._reported_scheduler != process.pid:
            self._reported_scheduler = process.pid
            self.log.warning("Worker %s: its scheduler (pid %s) exited with %s; starting another", self.name,
                             process.pid, process.exitcode)
        self.scheduler.acquire_locks(auto_start=True)

    def _ensure_registered(self) -> None:
        """After Redis lost its data (restart without persistence, flush), be a known worker again."""
        if self.connection.hexists(self.key, "birth"):
            return
        self.log.warning("Worker %s: its registration is gone from Redis; registering again", self.name)
        with self.connection.pipeline() as pipeline:
            pipeline.hset(self.key, mapping={**self.serialize(), "state": str(self._state)})
            worker_registration.register(self, pipeline)
            pipeline.expire(self.key, self.worker_ttl + 60)
            pipeline.execute()

    # --- running a job: the parent ---------------------------------------------------------------

    def execute_job(self, job: Job, queue: Queue) -> None:
        """rq's ``Worker.execute_job`` (prepare, fork, monitor, idle) with its Redis steps carried through outages."""
        execution = self._through_outage("preparing a job", partial(self._prepare, job))
        self._job_in_hand, self._horse_exit = job, None
        try:
            self.fork_work_horse(job, queue)
            try:
                self.monitor_work_horse(job, queue, execution)
            except REDIS_ERRORS as exc:
                # Only rq's look at the job after an abnormal exit gets here; the render is settled already.
                self._redis_unreachable("recording a job's end", exc)
                self._record_abnormal_end(job, queue, execution)
        finally:
            self._job_in_hand = None
        self.set_state(WorkerStatus.IDLE)

    def _prepare(self, job: Job) -> Execution:
        self.executions.clear()  # one job at a time: drop an execution a failed try left behind
        return self.prepare_execution(job)

    def fork_work_horse(self, job: Job, queue: Queue) -> None:
        connections.close_all()  # a database connection shared by parent and horse is corrupted by both
        super().fork_work_horse(job, queue)

    def wait_for_horse(self) -> tuple[int | None, int | None, Any]:
        """rq's wait for the horse; a horse that died settles its render here, before rq needs Redis.

        rq's monitor waits under an alarm (``job_monitoring_interval``); it is held off while the
        render is settled, and a wait it cut short gives the status an earlier call reaped.
        """
        pid, status, rusage = super().wait_for_horse()
        job = self._job_in_hand
        if self.is_horse or job is None:
            return pid, status, rusage
        if pid is None and self._horse_exit is not None:
            return (*self._horse_exit, None)
        if pid and status is not None:
            self._horse_exit = (pid, status)
            if status != 0 and self._stopped_job_id != job.id:
                held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
                try:
                    self._horse_died(job, pid, status)
                finally:
                    signal.pthread_sigmask(signal.SIG_SETMASK, held)
        return pid, status, rusage

    def _horse_died(self, job: Job, pid: int, status: int) -> None:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # what the horse left in its process group (ffmpeg)
        how = exit_reason(status)
        self.log.warning("Worker %s: the work horse of job %s died (%s)", self.name, job.id, how)
        try:
            render_job.on_horse_death(job, how)
        except DatabaseError as exc:
            self.log.warning("Worker %s: could not record the dead horse of job %s: %s", self.name, job.id, exc)
        finally:
            connections.close_all()

    def _record_abnormal_end(self, job: Job, queue: Queue, execution: Execution) -> None:
        """Once Redis is back, let rq record what ``monitor_work_horse`` could not (retry or fail, or stopped)."""
        if self._horse_exit is None or self._horse_exit[1] == 0:
            return
        if self._stopped_job_id == job.id:
            self._through_outage("recording a stopped job", partial(self._handle_stopped_job, job, queue, execution))
            return
        reason = f"Work-horse terminated unexpectedly ({exit_reason(self._horse_exit[1])})"
        self.handle_job_failure(job, queue=queue, exc_string=reason, execution=execution)

    # --- running a job: what the horse records in Redis waits for it -------------------------------------

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        self._through_outage("starting its job",
                             partial(super().prepare_job_execution, job, remove_from_intermediate_queue))

    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        self._through_outage("ending its job", partial(super().handle_execution_ended, job, queue, heartbeat_ttl))

    def handle_job_success(self, job: Job, queue: Queue, started_job_registry: Any, execution: Execution) -> None:
        self._through_outage("recording a finished job",
                             partial(super().handle_job_success, job, queue, started_job_registry, execution))

    def handle_job_failure(self, job: Job, queue: Queue, started_job_registry: Any = None, exc_string: str = "",
                           execution: Execution | None = None) -> None:
        # rq logs and drops a failure it cannot write: wait until Redis answers first.
        self._through_outage("recording a failed job", self.connection.ping)
        super().handle_job_failure(job, queue, started_job_registry=started_job_registry, exc_string=exc_string,
                                   execution=execution)
