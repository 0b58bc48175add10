"""Pre-render results into the cache, outside any request (``manage.py transforms_cache --warm``).

One warm-up is the path a request takes (resolve, the order, ``delivery.obtain``: the
same key, render lock and fill), with the result drained into the cache instead of a
socket. A warm-up running beside live traffic therefore never renders anything twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

from streaming.errors import HttpError
from streaming.fill import TeedPipeline
from streaming.follow import FollowAborted
from streaming.limits import Saturated
from streaming.pipeline import PipelineError

from .cache import Entry, result_cache
from .delivery import obtain
from .formats import EXTENSIONS
from .planning import order_for
from .sources import media_root, require_image, resolve
from .spec import TransformSpec, parse_query


def parse_specs(raw: str) -> list[TransformSpec]:
    """``size=300x200,size=x120&fit=cover`` -> specs (commas separate specs, & separates parameters)."""
    specs = []
    for query in filter(None, (part.strip() for part in raw.split(","))):
        specs.append(parse_query(parse_qs(query, keep_blank_values=True)))
    return specs


def media_files(paths: list[str]) -> Iterator[str]:
    """Request names (relative to MEDIA_ROOT) of the images under ``paths`` (files or folders)."""
    root = media_root()
    for given in paths or [""]:
        start = Path(os.path.realpath(root / given))
        if start.is_file():
            yield str(start.relative_to(root))
            continue
        for folder, dirs, files in os.walk(start):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if not name.startswith(".") and os.path.splitext(name)[1].lower() in EXTENSIONS["image"]:
                    yield os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")


def warm_one(name: str, spec: TransformSpec) -> tuple[str, str]:
    """("made" | "cached" | "failed", detail); never raises, so it can run in a process pool."""
    try:
        if result_cache() is None:
            return "failed", "the result cache is turned off"
        source = resolve(name)
        with require_image(source) as image:
            order = order_for(source, spec, image)
            outcome = obtain(order, uncached=False)
            if isinstance(outcome, Entry):
                outcome.file.close()
                return "cached", order.key
            body = outcome.body
            if isinstance(body, bytes):
                return "made", order.key
            try:
                while body.read():
                    pass
            finally:
                body.close()
            if isinstance(body, TeedPipeline) and not body.committed:
                return "failed", "the result was incomplete"
            return "made", order.key
    except HttpError as exc:
        return "failed", exc.message
    except (PipelineError, FollowAborted, Saturated, OSError) as exc:
        return "failed", str(exc)
