"""Responsive images for templates: ``{% picture %}`` and its Python twin ``picture()``.

From one path under MEDIA_ROOT this writes what a responsive image needs, which the
anchors leave to hand-written markup (sorl and easy-thumbnails pre-generate fixed sizes;
Wagtail's ``{% picture %}`` only serves its own image model):

    <picture>
      <source type="image/avif" srcset="...?size=320x213... 320w, ... 640w" sizes="...">
      <source type="image/webp" srcset="..." sizes="...">
      <img src="..." srcset="..." sizes="..." width="640" height="427" alt="..."
           loading="lazy" decoding="async">
    </picture>

Each candidate's width and height are the plan the server will carry out (``geometry``),
so the intrinsic size is exact (no layout shift) and no width exceeds the source. The
source's size is read from its header (images) or ffprobe (video: a frame grab), once
per file version. Every URL is signed when signing is on. ``placeholder="blur"`` inlines
a tiny preview of the same crop as the image's CSS background (an LQIP), made and cached
like any transform.
"""

from __future__ import annotations

import base64
import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from streaming.errors import HttpError
from streaming.follow import FollowAborted
from streaming.limits import Saturated
from streaming.pipeline import PipelineError

from .cache import Entry
from .conf import conf
from .delivery import Outcome, obtain
from .engines import ENGINES
from .errors import NotApplicable
from .formats import CONTENT_TYPES, FRAME_FORMATS
from .geometry import plan_for
from .planning import order_for
from .probe import probe_media
from .signing import media_url
from .sources import Source, describe, opened_image, resolve
from .spec import TransformSpec, parse_query

logger = logging.getLogger(__name__)

DEFAULT_WIDTHS = (320, 480, 640, 960, 1280, 1600, 1920, 2560)
# The <img src> for browsers without srcset: the largest candidate up to this width.
FALLBACK_WIDTH = 1024
PLACEHOLDER_WIDTH = 24
# WebP: a 24 px preview is about 150 bytes (a JPEG's tables alone are 600); a browser without
# WebP shows no placeholder, which is all a placeholder may cost.
PLACEHOLDER_FORMAT = "webp"


@dataclass(frozen=True)
class Shape:
    """What the markup needs to know of a source: its size as shown, alpha, and for video the frame."""

    width: int
    height: int
    alpha: bool
    frame: float | None  # None: an image; else the second of the video the picture is grabbed at


@dataclass(frozen=True)
class Candidate:
    width: int  # output pixels, as the server will make them
    height: int
    query: dict[str, object]


def picture(path: str, *, alt: str = "", widths: Iterable[int] | str | None = None, sizes: str = "100vw",
            ratio: str | float | None = None, fit: str | None = None, gravity: str | None = None,
            formats: Iterable[str] | str | None = None, placeholder: str | None = None,
            frame: float | None = None, quality: int | None = None, css_class: str | None = None,
            loading: str = "lazy") -> SafeString:
    """The ``<picture>`` for ``path``; see the module docstring. A source that cannot be read gets a plain
    ``<img>`` (its URL then answers the 4xx that says why), so one bad file never breaks a page."""
    try:
        shape = source_shape(resolve(path), frame)
    except HttpError as exc:
        logger.warning("picture: %s: %s", path, exc.message)
        return format_html('<img src="{}" alt="{}" loading="{}" decoding="async">', media_url(path), alt, loading)
    candidates = candidates_for(shape, parse_widths(widths), ratio, fit, gravity, quality)
    chosen = output_formats(shape, formats)
    fallback = [c for c in candidates if c.width <= FALLBACK_WIDTH] or candidates[:1]
    img = fallback[-1]
    sources = format_html_join(
        "\n  ", '<source type="{}" srcset="{}" sizes="{}">',
        ((CONTENT_TYPES[fmt], srcset(path, candidates, fmt), sizes) for fmt in chosen[:-1]),
    )
    style = placeholder_style(path, shape, candidates[0]) if placeholder == "blur" else ""
    return format_html(
        '<picture>\n  {}\n  <img src="{}" srcset="{}" sizes="{}" width="{}" height="{}" alt="{}" '
        'loading="{}" decoding="async"{}{}>\n</picture>',
        sources, url(path, img, chosen[-1]), srcset(path, candidates, chosen[-1]), sizes, img.width, img.height,
        alt, loading, format_html(' class="{}"', css_class) if css_class else "",
        format_html(' style="{}"', style) if style else "",
    )


def picture_url(path: str, *, width: int, ratio: str | float | None = None, fit: str | None = None,
                gravity: str | None = None, frame: float | None = None, fmt: str = "auto") -> str:
    """One URL of the picture at ``width`` (capped by the source), e.g. for ``<video poster>``: ``format=auto``
    lets the server pick AVIF/WebP from the browser's Accept header, as a poster has no srcset."""
    try:
        shape = source_shape(resolve(path), frame)
    except HttpError as exc:  # the page still renders; the URL then answers the 4xx that says why
        logger.warning("picture_url: %s: %s", path, exc.message)
        return media_url(path, frame=frame, size=f"{width}x", format=fmt)
    candidate = candidates_for(shape, [width], ratio, fit, gravity, None)[0]
    return url(path, candidate, fmt)


def parse_widths(widths: Iterable[int] | str | None) -> list[int]:
    if widths is None:
        return list(DEFAULT_WIDTHS)
    if isinstance(widths, str):
        widths = [int(part) for part in widths.replace(" ", "").split(",") if part]
    values = sorted({int(width) for width in widths})
    if not values or values[0] < 1 or values[-1] > conf.MAX_DIMENSION:
        raise ValueError(f"picture widths must be 1..{conf.MAX_DIMENSION}, not {values}")
    return values


def parse_ratio(ratio: str | float | None) -> float | None:
    """``"3:2"``, ``"16/9"`` or ``1.5`` -> width / height."""
    if ratio is None or ratio == "":
        return None
    if isinstance(ratio, str):
        for separator in (":", "/"):
            if separator in ratio:
                width, height = ratio.split(separator)
                return float(width) / float(height)
    return float(ratio)


def candidates_for(shape: Shape, widths: list[int], ratio: str | float | None, fit: str | None,
                   gravity: str | None, quality: int | None) -> list[Candidate]:
    """One candidate per distinct output width: what ``size=`` gives on this source, never wider than it."""
    aspect = parse_ratio(ratio)
    base = {"fit": fit or ("cover" if aspect else None), "gravity": gravity, "quality": quality,
            "frame": None if shape.frame is None else f"{shape.frame:g}"}
    found: dict[int, Candidate] = {}
    for wanted in widths:
        candidate = candidate_at(shape, wanted, aspect, base)
        if candidate.width != wanted:  # capped by the source: ask for what it gives, so the URL says so
            candidate = candidate_at(shape, candidate.width, aspect, base)
        found.setdefault(candidate.width, candidate)
    return [found[width] for width in sorted(found)]


def candidate_at(shape: Shape, width: int, aspect: float | None, base: dict[str, object]) -> Candidate:
    height = max(1, round(width / aspect)) if aspect else None
    query = {"size": f"{width}x{height or ''}", **base}
    out_w, out_h = plan_for((shape.width, shape.height), spec_of(query)).output
    return Candidate(out_w, out_h, query)


def spec_of(query: dict[str, object]) -> TransformSpec:
    """The spec the server will parse from ``query`` (None values are left out of URLs)."""
    return parse_query({name: [str(value)] for name, value in query.items() if value is not None})


def output_formats(shape: Shape, formats: Iterable[str] | str | None) -> list[str]:
    """The formats to offer, best first, the last being the ``<img>`` fallback every browser shows."""
    writable = FRAME_FORMATS if shape.frame is not None else ENGINES[conf.DEFAULT_ENGINE].output_formats
    if formats is None:
        formats = ["avif", "webp", "png" if shape.alpha else "jpeg"]
    elif isinstance(formats, str):
        formats = [part for part in formats.replace(" ", "").split(",") if part]
    chosen = [fmt for fmt in ("jpeg" if fmt == "jpg" else fmt for fmt in formats) if fmt in writable]
    return chosen or ["png" if shape.alpha else "jpeg"]


def url(path: str, candidate: Candidate, fmt: str) -> str:
    return media_url(path, **candidate.query, format=fmt)


def srcset(path: str, candidates: list[Candidate], fmt: str) -> str:
    return ", ".join(f"{url(path, candidate, fmt)} {candidate.width}w" for candidate in candidates)


def source_shape(source: Source, frame: float | None) -> Shape:
    return shape_of(str(source.path), source.name, source.size, source.mtime_ns, frame)


@functools.lru_cache(maxsize=4096)
def shape_of(path: str, name: str, size: int, mtime_ns: int, frame: float | None) -> Shape:
    """The source's shape, read once per file version: the image header, else ffprobe."""
    source = resolve(name)
    with opened_image(source) as image:
        if image is not None:
            info = describe(source, image)
            return Shape(info.width, info.height, info.has_alpha, None)
    media = probe_media(source)
    if not media.has_video:
        raise NotApplicable("path", "an audio file has no picture")
    wanted = 1.0 if frame is None else frame
    if media.duration:
        wanted = min(wanted, media.duration / 2)
    return Shape(media.width, media.height, False, round(wanted, 3))


def placeholder_style(path: str, shape: Shape, smallest: Candidate) -> str:
    """A CSS background of a tiny preview of the same crop, inlined as a data URI (empty if it cannot be made)."""
    width = min(PLACEHOLDER_WIDTH, smallest.width)
    by_width_only = str(smallest.query["size"]).endswith("x")
    height = "" if by_width_only else max(1, round(width * smallest.height / smallest.width))
    query = {**smallest.query, "size": f"{width}x{height}", "quality": 40, "format": PLACEHOLDER_FORMAT}
    if shape.frame is None:
        query["blur"] = 1
    try:
        source = resolve(path)
        with opened_image(source) as image:
            data = drain(obtain(order_for(source, spec_of(query), image)))
    except (HttpError, PipelineError, FollowAborted, Saturated, OSError) as exc:  # a busy worker: no preview
        logger.warning("picture: no placeholder for %s: %s", path, exc)
        return ""
    return ("background-size:cover;background-repeat:no-repeat;"
            f"background-image:url(data:{CONTENT_TYPES[PLACEHOLDER_FORMAT]};base64,{base64.b64encode(data).decode()})")


def drain(outcome: Outcome) -> bytes:
    """The whole body of a result, whichever way ``obtain`` delivered it."""
    if isinstance(outcome, Entry):
        with outcome.file as file:
            file.seek(outcome.offset)
            return file.read(outcome.size)
    body = outcome.body
    if isinstance(body, bytes):
        return body
    chunks = []
    try:
        while chunk := body.read():
            chunks.append(chunk)
    finally:
        body.close()
    return b"".join(chunks)

