"""The rq queue renders go to, and the one Redis client per process that reaches it.

django-rq's ``get_queue`` makes a new client on every call (django-rq #210); a web
process that asks for the queue on every request would open connections without end.
Here there is one client per Redis URL per process, with short timeouts so a Redis that
is down answers "unavailable" in seconds instead of hanging a request.
"""

from __future__ import annotations

import threading

import redis
from django.conf import settings
from rq import Queue

from .conf import conf
from .errors import REDIS_ERRORS

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


def redis_reachable() -> bool:
    """Whether the queue's Redis answers now (the admin says so instead of failing later)."""
    try:
        return bool(redis_connection().ping())
    except REDIS_ERRORS:
        return False
