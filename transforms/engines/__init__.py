"""Engines, one module per tool, behind the interface in ``base``."""

from __future__ import annotations

from ..errors import EngineUnavailable, InvalidSpec
from .base import Engine, ImageJob
from .cjpeg import CjpegEngine
from .convert import ConvertEngine
from .ffmpeg import FfmpegEngine, MediaJob
from .pillow import PillowEngine

ENGINES: dict[str, Engine] = {
    engine.name: engine for engine in (PillowEngine(), ConvertEngine(), CjpegEngine(), FfmpegEngine())
}


def get_engine(name: str) -> Engine:
    """The engine called ``name``, or EngineUnavailable saying why it cannot run here."""
    engine = ENGINES.get(name)
    if engine is None:
        raise InvalidSpec("engine", f"{name!r} is not an engine of this server", ", ".join(ENGINES))
    problem = engine.check()
    if problem:
        raise EngineUnavailable(f"engine {name!r} cannot run here: {problem}", engine=name)
    return engine


__all__ = ["ENGINES", "Engine", "FfmpegEngine", "ImageJob", "MediaJob", "get_engine"]
