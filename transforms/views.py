"""The media views: HTTP in, HTTP out. A thumbnail request reads top to bottom:

    media(request, path)
      resolve the path under MEDIA_ROOT (404)                       sources.resolve
      no query: the original file (sendfile, Range, 304)            delivery.original_response
      parse the header once, then the order from the query          planning.order_for_request
        (400 bad parameter, 403 bad signature)
      If-None-Match / ETag -> 304, before anything is probed
      the result: cache hit, or planned (413/415/422 refusals),     delivery.deliver
        started under a work slot (503) and a deadline (504),
        streamed from the tool and teed into the cache

Every refusal is an ``HttpError`` raised where it is found; ``streaming.errors.json_errors``
turns it into the JSON response, here as for the render API and the cameras.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.shortcuts import render
from django.utils.http import parse_etags, parse_http_date_safe
from django.views.decorators.http import require_safe
from django.views.static import was_modified_since

from streaming.errors import json_errors

from .delivery import deliver, head, original_headers, original_response
from .errors import SourceNotFound
from .formats import media_kind
from .metadata import info_response
from .planning import order_for_request
from .sources import media_root, opened_image, resolve

INDEX_LIMIT = 500


def headers_only_on_head(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """On HEAD, a body made in memory (a JSON error, a playlist, a page) leaves as its length alone.

    The server would drop it anyway, with a warning per response; streamed bodies never get
    here on HEAD (``delivery.head`` starts nothing, ``streaming.ranges`` sends no file).
    """

    @functools.wraps(view)
    def answer(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if request.method == "HEAD" and not response.streaming and response.content:
            response.headers["Content-Length"] = str(len(response.content))
            response.content = b""
        return response

    return answer


@require_safe
@headers_only_on_head
@json_errors
def media(request: HttpRequest, path: str) -> HttpResponse:
    """Serve ``path`` from MEDIA_ROOT: the original without a query, a transform with one."""
    request.metrics_kind = "media"
    source = resolve(path)
    if not request.GET:
        request.metrics_kind = "original"
        etag = f'"{source.version}"'
        if not_modified(request, etag, source.mtime_ns / 1e9):
            return HttpResponseNotModified(headers=original_headers(source, etag))
        return original_response(request, source, etag)
    with opened_image(source) as image:  # the response is made (bytes, or a started tool) before it closes
        request.metrics_kind = "image" if image is not None else "video"  # also when the query is refused
        order = order_for_request(request, source, image)
        request.metrics_kind = order.kind
        if not_modified(request, order.etag):
            return HttpResponseNotModified(headers=order.headers)
        if order.spec.info:
            return info_response(order)
        if request.method == "HEAD":
            return head(request, order)
        return deliver(request, order)


def not_modified(request: HttpRequest, etag: str, mtime: float | None = None) -> bool:
    """If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2)."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        tags = parse_etags(if_none_match)
        return "*" in tags or etag in tags or f"W/{etag}" in tags
    since = request.headers.get("If-Modified-Since")
    if mtime is not None and since:
        when = parse_http_date_safe(since)
        if when is None or when > time.time():
            return False  # not a date, or a date in the future: ignored (RFC 9110 13.1.3)
        return not was_modified_since(since, int(mtime))
    return False


def index(request: HttpRequest) -> HttpResponse:
    """The front page: every image with a live thumbnail, every clip with a frame grab."""
    root = media_root()
    entries = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            kind = media_kind(name)
            if name.startswith(".") or kind is None:
                continue
            relative = os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")
            entries.append({"name": relative, "kind": kind})
            if len(entries) >= INDEX_LIMIT:
                break
    return render(request, "transforms/index.html", {"entries": entries, "root": root})


@require_safe
@headers_only_on_head
@json_errors
def player(request: HttpRequest, path: str) -> HttpResponse:
    """A page that plays one clip: the fragmented MP4 transcode, with WebM as the alternative."""
    source = resolve(path)
    kind = media_kind(source.name)
    if kind not in ("video", "audio"):
        raise SourceNotFound("no such video or audio file", path=path)
    return render(request, "transforms/player.html", {"name": source.name, "kind": kind})
