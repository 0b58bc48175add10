"""System checks: say at start-up which engines cannot run and why."""

from __future__ import annotations

from django.core import checks

from .conf import conf
from .engines import ENGINES


@checks.register()
def check_engines(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    for engine in ENGINES.values():
        problem = engine.check()
        if problem:
            messages.append(
                checks.Warning(
                    f"the {engine.name} engine is unavailable: {problem}",
                    hint="install the tool or set its TRANSFORMS_* path setting",
                    id="transforms.W001",
                    obj=engine.name,
                )
            )
    if conf.DEFAULT_ENGINE not in ENGINES:
        messages.append(
            checks.Error(f"TRANSFORMS_DEFAULT_ENGINE {conf.DEFAULT_ENGINE!r} is not an engine", id="transforms.E002")
        )
    return messages


@checks.register()
def check_signing(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    if conf.SIGNING not in ("off", "required"):
        return [checks.Error("TRANSFORMS_SIGNING must be 'off' or 'required'", id="transforms.E001")]
    return []


@checks.register()
def check_render_font(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Title cards need a real font file; say so at start-up rather than when a render fails."""
    import os

    from django.conf import settings

    font = str(getattr(settings, "RENDER_FONT", ""))
    if not os.path.isfile(font):
        return [checks.Warning(f"RENDER_FONT {font!r} is not a file: renders with title cards will fail",
                               hint="install fonts-dejavu-core or point RENDER_FONT at a .ttf file",
                               id="transforms.W020")]
    return []
