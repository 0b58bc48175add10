"""System checks for renders: say at start-up what would make every render of a kind fail."""

from __future__ import annotations

import os
from typing import Any

from django.core import checks

from .conf import conf


@checks.register()
def check_render_font(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Title cards need a real font file; say so at start-up rather than when a render fails."""
    font = str(conf.FONT)
    if not os.path.isfile(font):
        return [checks.Warning(f"RENDER_FONT {font!r} is not a file: renders with title cards will fail",
                               hint="install fonts-dejavu-core or point RENDER_FONT at a .ttf file",
                               id="transforms.W020")]
    return []


@checks.register()
def check_render_queue(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A bare ``manage.py rqworker`` listens on "default": with another queue, renders would wait unseen."""
    if conf.QUEUE != "default":
        return [checks.Warning(f"RENDER_QUEUE is {conf.QUEUE!r}: a bare `manage.py rqworker` listens on 'default' "
                               "and will not take renders",
                               hint=f"start render workers with `manage.py rqworker {conf.QUEUE}`, or leave "
                                    "RENDER_QUEUE unset",
                               id="transforms.W021")]
    return []
