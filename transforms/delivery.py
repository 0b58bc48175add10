"""How a result reaches the client: the result cache, coalescing, the fill, and the response body.

``obtain(order)`` is the one path to a result, for requests and for ``--warm`` alike:

    cache hit           -> the Entry (an open file; no probe, no tool)
    miss                -> plan the order (every refusal happens here), then claim the render lock:
        someone renders -> follow their streaming render (Following) or, after the wait, make our own
        our turn        -> start the task; bytes are stored, a pipeline is teed into the cache as it streams

``respond`` turns what ``obtain`` gave into the response: files through
``wsgi.file_wrapper`` (sendfile, Range), pipes as ``PipeResponse`` (splice), growing
files chunked. A hit or an original may be replayed by the worker (``streaming.replay``)
while its source is unchanged.
"""

from __future__ import annotations

import logging
import mimetypes
from dataclasses import dataclass

from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.http import http_date

from streaming.conf import conf as streaming_conf
from streaming.fill import FileFill, TeedPipeline
from streaming.metrics import RESULT_CACHE
from streaming.ranges import file_response
from streaming.replay import mark_replayable
from streaming.responses import PipeResponse

from .cache import Entry, Following, RenderLock, ResultCache, result_cache
from .conf import conf
from .engines.base import CommandEngine
from .engines.text import TextJob
from .errors import Busy
from .planning import Order, Task, plan
from .sources import Source, requested_path
from .work import Result, start

logger = logging.getLogger(__name__)

SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'"}

Outcome = Entry | Following | Result
# What a claim came to, as the result cache's metric counts it.
OUTCOMES = {Entry: "hit", Following: "follow", RenderLock: "miss"}


def deliver(request: HttpRequest, order: Order) -> HttpResponse:
    """The response to a transform request whose ETag did not match."""
    return respond(request, obtain(order), order.headers, etag=order.etag, source=order.source, kind=order.kind)


def head(request: HttpRequest, order: Order) -> HttpResponse:
    """What a GET would answer, as headers: from the cache file when there is one, else from the plan.

    Nothing is started and no render lock is taken (a HEAD used to start a render and
    abandon it, and a GET arriving then followed it into an empty body). Refusals are
    the GET's, since the plan makes them. An uncached result has no length yet, as the
    stream a GET gets has none; a playlist is written, as for a GET (nothing runs).
    """
    cache = result_cache() if order.cached else None
    entry = cache.open(order.key) if cache is not None else None
    if entry is not None:
        return respond(request, entry, order.headers, etag=order.etag)
    task = plan(order)
    if isinstance(task.job, TextJob):
        return respond(request, start(task), order.headers)
    headers = {**order.headers, **SECURITY_HEADERS}
    if isinstance(task.engine, CommandEngine):  # a GET streams the tool's output (PipeResponse)
        headers.update({"Accept-Ranges": "none", "X-Accel-Buffering": "no"})
    return StreamingHttpResponse((), content_type=task.content_type, headers=headers)


def obtain(order: Order, *, uncached: bool = True) -> Outcome:
    """The order's result from the cache, from an identical render in progress, or made now.

    ``uncached``: when an identical render that does not stream is still running after
    the order's wait, make our own without caching it (a request); otherwise refuse (``--warm``).
    """
    cache = result_cache() if order.cached else None
    entry = cache.open(order.key) if cache is not None else None
    if entry is not None:
        RESULT_CACHE.labels("hit").inc()
        return entry
    return produce(cache, order.key, plan(order), order.cache_wait, uncached=uncached)


def produce(cache: ResultCache | None, key: str, task: Task, wait: float, *, uncached: bool = True) -> Outcome:
    """Make ``task``'s result once for everyone asking for ``key``: claim its render lock, or follow or wait."""
    if cache is None:
        return start(task)
    try:
        claimed = cache.claim(key, wait, stall=float(streaming_conf.STALL_TIMEOUT))
    except OSError as exc:  # an unwritable or full cache folder must not fail the request
        logger.warning("result cache unusable, serving uncached: %s", exc)
        return start(task)
    if claimed is None:
        if not uncached:
            raise Busy()
        logger.info("result cache: gave up waiting for %s, rendering uncached", key)
        return start(task)
    outcome = OUTCOMES[type(claimed)]
    RESULT_CACHE.labels(outcome).inc()
    if isinstance(claimed, RenderLock):
        logger.info("result cache miss: rendering %s", key)
        return make_cached(cache, key, claimed, task)
    logger.info("result cache: %s %s", "following the render of" if outcome == "follow" else "waited for", key)
    return claimed


def make_cached(cache: ResultCache, key: str, lock: RenderLock, task: Task) -> Result:
    """Start the task under our render lock; store its bytes, or tee its pipeline into the cache."""
    try:
        result = start(task)
    except BaseException:
        lock.release()
        raise
    if isinstance(result.body, bytes):
        try:
            cache.store(key, result.content_type, result.body)
        except OSError as exc:
            logger.warning("result cache unusable, not storing: %s", exc)
        finally:
            lock.release()
        return result
    try:
        fill = cache.fill(key, result.content_type)
    except OSError as exc:
        lock.release()
        logger.warning("result cache unusable, streaming uncached: %s", exc)
        return result
    except BaseException:
        result.body.close()
        lock.release()
        raise
    lock.publish(fill.temp)
    return Result(result.content_type, TeedPipeline(result.body, fill, FillDone(cache, lock, fill).done))


@dataclass
class FillDone:
    """What ends a streamed fill: the render lock goes, and a committed entry counts towards the bound."""

    cache: ResultCache
    lock: RenderLock
    fill: FileFill

    def done(self, committed: bool) -> None:
        self.lock.release()
        if committed:
            self.cache.added(self.fill.header_size + self.fill.body_bytes)


def respond(request: HttpRequest, outcome: Outcome, headers: dict[str, str], *, etag: str | None = None,
            source: Source | None = None, kind: str = "file") -> HttpResponse:
    """The response for a result; a cache hit made from ``source`` may be replayed while it is unchanged
    (and counted as a request of ``kind`` when it is)."""
    headers = {**headers, **SECURITY_HEADERS}
    if isinstance(outcome, Entry):
        response = file_response(request, outcome.file, size=outcome.size, offset=outcome.offset,
                                 content_type=outcome.content_type, headers=headers, etag=etag)
        return response if source is None else allow_replay(response, source, kind)
    if isinstance(outcome, Following):  # the length is not known yet: chunked, no Range, not buffered
        return FileResponse(outcome.body, content_type=outcome.content_type,
                            headers={**headers, "Accept-Ranges": "none", "X-Accel-Buffering": "no"})
    if isinstance(outcome.body, bytes):
        return HttpResponse(outcome.body, content_type=outcome.content_type, headers=headers)
    return PipeResponse(outcome.body, outcome.content_type, headers=headers)


def original_response(request: HttpRequest, source: Source, etag: str) -> HttpResponse:
    """The file itself, through ``wsgi.file_wrapper`` so the server can use sendfile; Range honoured."""
    mtime = source.mtime_ns / 1e9
    response = file_response(
        request,
        open(source.path, "rb", buffering=0),  # the response closes it
        size=source.size,
        content_type=mimetypes.guess_type(source.name)[0] or "application/octet-stream",
        headers={**original_headers(source, etag), **SECURITY_HEADERS},
        etag=etag,
        last_modified=mtime,
    )
    return allow_replay(response, source, "original")


def original_headers(source: Source, etag: str) -> dict[str, str]:
    return {"ETag": etag, "Last-Modified": http_date(source.mtime_ns / 1e9), "Cache-Control": conf.CACHE_CONTROL}


def allow_replay(response: HttpResponse, source: Source, kind: str) -> HttpResponse:
    """Let the worker answer this exact request again without Django while ``source`` is unchanged.

    Only whole file bodies qualify: their bytes follow from the URL, the request
    headers the worker keys on and the source file (``streaming.replay``).
    """
    if response.status_code == 200 and isinstance(response, FileResponse):
        mark_replayable(response.file_to_stream, requested_path(source), source.identity, kind)
    return response
