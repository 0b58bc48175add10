"""Benchmark-only views: N bytes from a subprocess pipe, as our PipeResponse or Django's default FileResponse."""

from __future__ import annotations

from django.http import FileResponse, HttpRequest, HttpResponse
from django.urls import path

from mediasite.urls import urlpatterns as site_patterns
from streaming.pipeline import Pipeline
from streaming.responses import PipeResponse


def zero_pipeline(size: int) -> Pipeline:
    return Pipeline([["head", "-c", str(size), "/dev/zero"]], deadline=3600)


def pipe(request: HttpRequest, size: int) -> HttpResponse:
    """PipeResponse: spliced by the splice worker, else read in 1 MiB blocks."""
    return PipeResponse(zero_pipeline(size), "application/octet-stream")


def django_default(request: HttpRequest, size: int) -> HttpResponse:
    """What a Django view would do unaided: FileResponse with its 4 KiB block size."""
    return FileResponse(zero_pipeline(size), content_type="application/octet-stream")


urlpatterns = [
    path("_bench/pipe/<int:size>", pipe),
    path("_bench/django/<int:size>", django_default),
    *site_patterns,
]
