"""Engines, one module per tool, behind the interface in ``base``; what each can do here, probed once.

``engine_status`` answers whether an engine can run and which version it is (the
version goes into every ETag and cache key). Finding out starts its tools
(``convert -version``...), so it happens once per process and set of tool paths,
under a lock: the WSGI application probes every engine when it loads
(``probe_engines``, called from ``mediasite/wsgi.py``), so no request, not even the
first cache hit or 304 of a fresh worker, starts a process to learn it.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

from ..errors import EngineUnavailable
from .base import Engine, ImageJob
from .cjpeg import CjpegEngine
from .convert import ConvertEngine
from .ffmpeg import FfmpegEngine, MediaJob
from .pillow import PillowEngine

ENGINES: dict[str, Engine] = {
    engine.name: engine for engine in (PillowEngine(), ConvertEngine(), CjpegEngine(), FfmpegEngine())
}


class EngineStatus(NamedTuple):
    problem: str | None  # None: the engine can run here
    version: str


_statuses: dict[tuple[object, ...], EngineStatus] = {}
_statuses_lock = threading.Lock()


def engine_status(engine: Engine) -> EngineStatus:
    """Whether ``engine`` can run and its version, probed once per process and tool paths."""
    key = (id(engine), *engine.tools())
    status = _statuses.get(key)
    if status is None:
        with _statuses_lock:  # a burst on a fresh worker waits for one probe instead of starting one each
            status = _statuses.get(key)
            if status is None:
                problem = engine.check()
                status = _statuses[key] = EngineStatus(problem, "unavailable" if problem else engine.version())
    return status


def probe_engines() -> None:
    """Probe every engine now (at process start), so requests only read the answers."""
    for engine in ENGINES.values():
        engine_status(engine)


def get_engine(name: str) -> Engine:
    """The engine called ``name`` (a name the spec parser accepted), or EngineUnavailable saying why not."""
    engine = ENGINES.get(name)
    if engine is None:  # only a bad TRANSFORMS_DEFAULT_ENGINE gets here (system check transforms.E002)
        raise EngineUnavailable(f"engine {name!r} is not an engine of this server", engine=name)
    problem = engine_status(engine).problem
    if problem:
        raise EngineUnavailable(f"engine {name!r} cannot run here: {problem}", engine=name)
    return engine


__all__ = ["ENGINES", "Engine", "EngineStatus", "FfmpegEngine", "ImageJob", "MediaJob", "engine_status",
           "get_engine", "probe_engines"]
