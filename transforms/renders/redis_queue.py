"""The rq queue renders go to, the one Redis client per process that reaches it, and the enqueue.

django-rq's ``get_queue`` makes a new client on every call (django-rq #210); a web
process that asks for the queue on every request would open connections without end.
Here there is one client per Redis URL per process, with short timeouts so a Redis that
is down answers "unavailable" in seconds instead of hanging a request.

``enqueue_render`` is the one place an attempt is put in the queue (a first start, a
retry from the admin, a render the queue lost and ``recovery`` queues again), so every
attempt carries the same timeout, retries and callbacks.
"""

from __future__ import annotations

import threading
import uuid

import redis
from django.conf import settings
from rq import Callback, Queue, Retry

from . import job
from .conf import conf
from .errors import REDIS_ERRORS

# How long rq keeps a finished job's result, and a failed job for inspection (seconds).
RESULT_TTL = 24 * 3600
FAILURE_TTL = 7 * 24 * 3600

_connections: dict[str, redis.Redis] = {}
_connections_lock = threading.Lock()


def queue_url() -> str:
    """The Redis URL of the render queue: its RQ_QUEUES entry, else REDIS_URL."""
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


def new_job_id(render_id: object) -> str:
    """The rq job id of a new attempt: chosen before the enqueue, so the row names it first."""
    return f"render-{render_id}-{uuid.uuid4().hex[:8]}"


def enqueue_render(render_id: object, job_id: str) -> None:
    """Queue one attempt of the render under ``job_id``; Redis errors reach the caller."""
    retries = conf.RETRIES
    render_queue().enqueue(
        job.run_render,
        str(render_id),
        job_id=job_id,
        job_timeout=conf.JOB_TIMEOUT,
        result_ttl=RESULT_TTL,
        failure_ttl=FAILURE_TTL,
        retry=Retry(max=retries, interval=conf.RETRY_INTERVAL) if retries > 0 else None,
        on_failure=Callback(job.on_render_failure),
        on_stopped=Callback(job.on_render_stopped),
        description=f"render {render_id}",
    )


def redis_reachable() -> bool:
    """Whether the queue's Redis answers now (the admin says so instead of failing later)."""
    try:
        return bool(redis_connection().ping())
    except REDIS_ERRORS:
        return False
