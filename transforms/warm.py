"""Pre-render results into the cache, outside any request (``manage.py transforms_cache --warm``).

One warm-up is the same path a request takes (resolve, parse, key, claim the
render lock, ``render_image``) with the result written to the cache instead of a
socket. It uses the same key and lock, so a warm-up running beside live traffic
never renders anything twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

from streaming.fill import TeedPipeline
from streaming.limits import Saturated
from streaming.pipeline import PipelineError

from .cache import Entry, cache_key, result_cache
from .conf import conf
from .engines import get_engine
from .errors import TransformError
from .sources import media_root, require_image, resolve
from .spec import TransformSpec, parse_query
from .views import MEDIA_EXTENSIONS, render_image, transform_ingredients


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
                if not name.startswith(".") and os.path.splitext(name)[1].lower() in MEDIA_EXTENSIONS:
                    yield os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")


def warm_one(name: str, spec: TransformSpec) -> tuple[str, str]:
    """("made" | "cached" | "failed", detail); never raises, so it can run in a process pool."""
    try:
        source = resolve(name)
        engine = get_engine(spec.engine or conf.DEFAULT_ENGINE)
        cache = result_cache()
        if cache is None:
            return "failed", "the result cache is turned off"
        key = cache_key(*transform_ingredients(source, spec, engine.version(), None))
        claimed = cache.claim(key, float(conf.CACHE_WAIT))
        if claimed is None:
            raise Saturated()
        if isinstance(claimed, Entry):
            claimed.file.close()
            return "cached", key
        try:
            with require_image(source) as image:
                rendered = render_image(source, image, spec, engine, None)
            if isinstance(rendered.body, bytes):
                cache.store(key, rendered.content_type, rendered.body)
            else:
                fill = cache.fill(key, rendered.content_type)
                with TeedPipeline(rendered.body, fill) as body:
                    while body.read():
                        pass
                if not body.committed:
                    return "failed", "the result was incomplete"
                cache.added(fill.header_size + fill.body_bytes)
        finally:
            claimed.release()
        return "made", key
    except TransformError as exc:
        return "failed", exc.message
    except (PipelineError, Saturated, OSError) as exc:
        return "failed", str(exc)
