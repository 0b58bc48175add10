"""Test-only views that answer with a ``PipeResponse`` over a real tool, served by a real gunicorn.

They exist so the splice worker can be tested before any subprocess engine is on
main: ``cat`` of a media file (integrity, optionally with Content-Length), a tool
that stalls, a tool that fails mid-stream, and ``head -c N /dev/zero``; and a
tool behind the result cache (``delivery.produce``) that counts its invocations.
"""

from __future__ import annotations

import sys

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path

from mediasite.urls import urlpatterns as site_patterns
from streaming.pipeline import Pipeline
from streaming.responses import PipeResponse
from transforms.cache import cache_key, result_cache
from transforms.delivery import produce, respond
from transforms.engines.base import CommandEngine
from transforms.planning import Task

STALL = "import sys, time; sys.stdout.buffer.write(b'x' * 1000); sys.stdout.flush(); time.sleep(60)"
FAIL = "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read()); sys.stdout.flush(); sys.exit(3)"


def cat(request: HttpRequest, name: str) -> HttpResponse:
    source = settings.MEDIA_ROOT / name
    response = PipeResponse(Pipeline([["cat"]], stdin_path=source, deadline=60), "application/octet-stream")
    if request.GET.get("length"):
        response["Content-Length"] = str(source.stat().st_size + int(request.GET.get("off", 0)))
    return response


def zero(request: HttpRequest, size: int) -> HttpResponse:
    return PipeResponse(Pipeline([["head", "-c", str(size), "/dev/zero"]], deadline=600), "application/octet-stream")


def stall(request: HttpRequest) -> HttpResponse:
    return PipeResponse(Pipeline([[sys.executable, "-c", STALL]], deadline=60), "application/octet-stream")


def fail(request: HttpRequest, name: str) -> HttpResponse:
    pipeline = Pipeline([[sys.executable, "-c", FAIL]], stdin_path=settings.MEDIA_ROOT / name, deadline=60)
    return PipeResponse(pipeline, "application/octet-stream")


class CountingTool(CommandEngine):
    """An engine whose one tool is ``<MEDIA_ROOT>/../tool NAME`` (written by the test, it counts its runs)."""

    name = "counting-tool"

    def commands(self, job) -> list[list[str]]:
        return [[str(settings.MEDIA_ROOT.parent / "tool"), job.name]]

    def render(self, job, *, deadline, on_close):
        return Pipeline(self.commands(job), deadline=deadline, on_close=on_close)


class ToolJob:
    def __init__(self, name: str) -> None:
        self.name = name
        self.source = self


def cached(request: HttpRequest, name: str) -> HttpResponse:
    """The result cache's produce over the counting tool, answered as the media views answer."""
    task = Task(CountingTool(), ToolJob(name), "application/x-test", 1, 60.0)
    key = cache_key("test", name, request.GET.get("v", ""))
    return respond(request, produce(result_cache(), key, task, 60.0), {"ETag": '"t"'}, etag='"t"')


urlpatterns = [
    path("_test/cached/<path:name>", cached),
    path("_test/cat/<path:name>", cat),
    path("_test/zero/<int:size>", zero),
    path("_test/stall", stall),
    path("_test/fail/<path:name>", fail),
    *site_patterns,
]
