"""Responses whose body comes from a pipe, or waits on the event loop."""

from __future__ import annotations

from django.http import FileResponse

from .bodies import LoopBody
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


class LoopResponse(FileResponse):
    """A long-lived response over a ``LoopBody`` (a camera stream, an event stream).

    A ``FileResponse`` for the same reason as ``PipeResponse``: the body reaches the
    server's ``wsgi.file_wrapper`` as itself, so the splice worker can give its socket
    to the event loop; other servers read it piece by piece (``read()`` returns one
    part or event whatever the block size).
    """

    def __init__(self, body: LoopBody, content_type: str, **kwargs) -> None:
        super().__init__(body, content_type=content_type, **kwargs)
        self.headers["X-Accel-Buffering"] = "no"
