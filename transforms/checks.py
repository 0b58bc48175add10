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

