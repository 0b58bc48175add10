"""From a request to a finished plan, in two steps, before any work starts.

1. ``order_for_request``: what was asked, from the query alone (and the image header the
   view already parsed): the spec, the signature, the engine, the negotiated format. That
   is enough for the ETag, the cache key and a 304, so those cost no probe.
2. ``plan``: on a cache miss, the order against the source: header limits (or ffprobe for
   video and audio), the output format, the geometry, and every refusal the engine would
   make. A request that will be refused is refused here, before it takes a cache lock or
   a work slot; what comes out (a ``Task``) is carried out as it is.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

from django.http import HttpRequest
from PIL import Image

from . import signing
from .cache import cache_key
from .conf import conf
from .engines import Engine, ImageJob, MediaJob, engine_status, get_engine
from .engines.segments import SegmentJob
from .engines.sprites import SheetJob
from .engines.text import TEXT, TextJob
from .errors import InvalidSpec
from .formats import CONTENT_TYPES, IMAGE_FORMATS, LOSSY_FORMATS, MEDIA_FORMATS, image_output_format, negotiate
from .geometry import plan_for
from .orientation import compose, shown_size
from .probe import probe_media
from .sources import Source, describe
from .spec import TransformSpec, parse_query
from .video import check_media_spec, makes_text, media_job


@dataclass(frozen=True)
class Order:
    """What a request asks of one source, decided from the URL and headers before anything is probed."""

    source: Source
    spec: TransformSpec
    engine: Engine
    negotiated: str | None  # the format Accept picked for format=auto, else None
    image: Image.Image | None  # the image's parsed header (None: a video or audio source)

    @cached_property
    def ingredients(self) -> tuple[str, ...]:
        """Everything that decides the result's bytes: the ETag and the cache key are both made of it."""
        version = engine_status(self.engine).version
        made = (self.source.name, self.source.version, self.spec.canonical(), version, self.negotiated or "")
        # a playlist or track carries signed URLs: a new key or signing mode must change its ETag
        return made + (signing.fingerprint(),) if self.engine is TEXT else made

    @cached_property
    def etag(self) -> str:
        return '"' + hashlib.sha256("\n".join(self.ingredients).encode()).hexdigest()[:32] + '"'

    @cached_property
    def key(self) -> str:
        return cache_key(*self.ingredients)

    @property
    def headers(self) -> dict[str, str]:
        """The headers every answer to this order carries, 304 included."""
        headers = {"ETag": self.etag, "Cache-Control": conf.CACHE_CONTROL}
        if self.spec.format == "auto":
            headers["Vary"] = "Accept"
        if self.spec.dpr != 1 and self.spec.has_size:
            headers["Content-DPR"] = f"{self.spec.dpr:g}"
        return headers

    @property
    def kind(self) -> str:
        """What the request is for, in /metrics: an image transform, an HLS segment, or another video/audio one."""
        if self.image is not None:
            return "image"
        return "hls_segment" if self.spec.segment is not None else "video"

    @property
    def streams(self) -> bool:
        """A transcode: identical requests follow its output as it grows rather than wait for the end."""
        return self.image is None and self.spec.frame is None and self.spec.storyboard is None

    @property
    def cached(self) -> bool:
        """Whether the result goes into the result cache: not a playlist or track, cheaper to write than read."""
        return self.engine is not TEXT

    @property
    def cache_wait(self) -> float:
        """Seconds an identical request waits for this order's render before making its own.

        A transcode's followers join as soon as its first bytes are in the cache file;
        until then (ffmpeg starting) they wait TRANSCODE_CACHE_WAIT, then stream their own.
        A thumbnail or a frame grab is quick and made whole, so they wait for it.
        """
        return float(conf.TRANSCODE_CACHE_WAIT if self.streams else conf.CACHE_WAIT)


@dataclass(frozen=True)
class Task:
    """A finished plan: the job an engine carries out as it is, and what running it costs."""

    engine: Engine
    job: ImageJob | MediaJob | SegmentJob | SheetJob | TextJob
    content_type: str
    weight: int
    deadline: float


def order_for_request(request: HttpRequest, source: Source, image: Image.Image | None) -> Order:
    """Parse and verify the query (400, 403) and pick the engine; ``image`` is the parsed header or None."""
    query = dict(request.GET.lists())
    spec = parse_query(query)
    signing.verify(source.name, query)
    negotiated = negotiate(request.headers.get("Accept", "")) if spec.format == "auto" else None
    return order_for(source, spec, image, negotiated)


def order_for(source: Source, spec: TransformSpec, image: Image.Image | None, negotiated: str | None = None) -> Order:
    """The order for ``spec`` on ``source``, refusing what no such source could make."""
    if spec.info:
        check_info_spec(spec)
    if image is None:
        for image_only in spec.image_parameters():
            raise InvalidSpec(image_only, "applies to image sources only")
        if not spec.info:
            check_media_spec(spec)
        return Order(source, spec, TEXT if makes_text(spec) else get_engine("ffmpeg"), negotiated, None)
    check_image_spec(spec)
    return Order(source, spec, get_engine(spec.engine or conf.DEFAULT_ENGINE), negotiated, image)


def check_info_spec(spec: TransformSpec) -> None:
    """``info=1`` describes the source as it is: any other parameter would describe nothing."""
    for name, value in vars(spec).items():
        if name != "info" and value != getattr(TransformSpec(), name):
            parameter = "size" if name in ("width", "height") else name
            raise InvalidSpec(parameter, "cannot be combined with info=1 (the metadata is of the source itself)")


def check_image_spec(spec: TransformSpec) -> None:
    for media_only in spec.media_parameters():
        raise InvalidSpec(media_only, "applies to video and audio sources only")
    if spec.format in MEDIA_FORMATS:
        raise InvalidSpec(
            "format", f"{spec.format} is a video or audio format and this file is an image", ", ".join(IMAGE_FORMATS)
        )
    if spec.gravity != "center" and spec.fit not in ("cover", "pad"):
        raise InvalidSpec("gravity", f"applies to fit=cover and fit=pad, not fit={spec.fit}", "fit=cover, fit=pad")
    if (spec.gravity == "smart" or spec.focus is not None) and spec.fit != "cover":
        raise InvalidSpec("gravity", f"{spec.gravity} chooses what a crop keeps: it needs fit=cover", "fit=cover")
    if spec.max_bytes is not None and spec.format not in (None, "auto", *LOSSY_FORMATS):
        raise InvalidSpec("max_bytes", f"applies to lossy outputs, not {spec.format}", ", ".join(LOSSY_FORMATS))


def plan(order: Order) -> Task:
    """Probe the source and finish the plan; every refusal (4xx) happens here, none later."""
    if order.image is None:
        job = media_job(order.source, probe_media(order.source), order.spec, order.negotiated)
        # a transcode (an HLS segment too) streams at the client's pace: its deadline covers that
        transcode = isinstance(job, MediaJob | SegmentJob) and not job.is_frame
        deadline = conf.VIDEO_DEADLINE if transcode else conf.DEADLINE
    else:
        job = image_job(order)
        deadline = conf.DEADLINE
    return Task(order.engine, job, CONTENT_TYPES[job.format], order.engine.weight_of(job), float(deadline))


def image_job(order: Order) -> ImageJob:
    """Check the header against the limits, then the format, geometry and the engine's refusals."""
    info = describe(order.source, order.image)
    spec = order.spec
    output_format = image_output_format(spec.format, order.negotiated, info.format, info.has_alpha)
    if spec.max_bytes is not None and output_format not in LOSSY_FORMATS:
        raise InvalidSpec("max_bytes", f"applies to lossy outputs and this result is {output_format}: "
                          "add format=jpeg, webp or avif", ", ".join(LOSSY_FORMATS))
    # The plan is made on the picture as it will be shown: the file's EXIF orientation, then rotate and flip.
    upright = shown_size((info.width, info.height), compose(1, spec.rotate, spec.flip))
    geometry = plan_for(upright, spec)
    job = ImageJob(order.source, info, geometry, output_format, spec.effective_quality, spec.bg,
                   opened=order.image, spec=spec)
    refused = order.engine.refusal(job)
    if refused is not None:
        raise refused
    return job
