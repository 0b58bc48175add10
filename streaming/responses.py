"""Responses whose body comes from a pipe."""

from __future__ import annotations

from django.http import FileResponse

from .pipeline import PIPE_SIZE, Pipeline


class PipeResponse(FileResponse):
    """A streamed response over a running ``Pipeline``.

    It is a ``FileResponse`` so that Django hands the pipeline to the server's
    ``wsgi.file_wrapper`` untouched (a wrapper would hide the pipe from a splice
    fast path); where no fast path applies it is read in 1 MiB blocks, not
    FileResponse's 4 KiB default, which is several times slower for pipes.
    """

    block_size = PIPE_SIZE

    def __init__(self, pipeline: Pipeline, content_type: str, **kwargs) -> None:
        super().__init__(pipeline, content_type=content_type, **kwargs)
        self.pipeline = pipeline
        self.headers.setdefault("Accept-Ranges", "none")
        # A proxy in front (nginx) passes a stream on as it comes instead of buffering it whole.
        self.headers["X-Accel-Buffering"] = "no"
