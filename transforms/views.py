"""The media views: the one place where errors become HTTP statuses.

    resolve the path -> parse the spec -> check the signature -> ETag / 304
    -> result cache hit: the file (sendfile, Range)
    -> miss: probe the header and check limits -> pick the engine -> render under a
    work slot and a deadline -> respond (bytes, or the tool's stdout as a stream,
    filling the cache on the way)

``respond_with`` is the seam every kind of transform (images here, video
elsewhere) goes through: cache key and headers in, a ``produce()`` callable for
the miss, a response out.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import os
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseNotModified, JsonResponse
from django.shortcuts import render
from django.utils.http import http_date, parse_etags, parse_http_date_safe
from django.views.decorators.http import require_safe
from django.views.static import was_modified_since
from PIL import Image

from streaming.conf import conf as streaming_conf
from streaming.fill import TeedPipeline
from streaming.limits import Saturated, WorkSlots
from streaming.pipeline import DeadlineExceeded, Pipeline, PipelineError
from streaming.ranges import file_response
from streaming.replay import mark_replayable
from streaming.responses import PipeResponse

from . import signing
from .cache import Entry, Following, cache_key, result_cache
from .conf import conf
from .engines import Engine, FfmpegEngine, ImageJob, get_engine
from .errors import Busy, InvalidSpec, SourceNotFound, TookTooLong, TransformError
from .formats import CONTENT_TYPES, MEDIA_CONTENT_TYPES, negotiate
from .geometry import plan_for
from .probe import probe_media
from .sources import Source, describe, media_root, open_image, requested_path, resolve
from .spec import IMAGE_FORMATS, MEDIA_FORMATS, TransformSpec, parse_query
from .video import check_media_spec, media_job

logger = logging.getLogger(__name__)

SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'"}

_slots: WorkSlots | None = None
_slots_lock = threading.Lock()


def work_slots() -> WorkSlots:
    """This process's work slots, sized from settings on first use."""
    global _slots
    with _slots_lock:
        if _slots is None:
            _slots = WorkSlots(conf.concurrency)
        return _slots


def error_response(exc: TransformError) -> JsonResponse:
    return JsonResponse(exc.as_json(), status=exc.status, headers={**SECURITY_HEADERS, **exc.headers()})


@require_safe
def media(request: HttpRequest, path: str) -> HttpResponse:
    """Serve ``path`` from MEDIA_ROOT: the original without a query, a transform with one."""
    try:
        source = resolve(path)
        if not request.GET:
            return serve_original(request, source)
        return serve_transform(request, source)
    except TransformError as exc:
        if exc.status >= 422:
            logger.info("refused %s: %s", path, exc.message)
        return error_response(exc)
    except Saturated as exc:
        return error_response(Busy(exc.retry_after))


def serve_original(request: HttpRequest, source: Source) -> HttpResponse:
    """The file itself, through ``wsgi.file_wrapper`` so the server can use sendfile; Range honoured."""
    etag = f'"{source.version}"'
    mtime = source.mtime_ns / 1e9
    headers = {"ETag": etag, "Last-Modified": http_date(mtime), "Cache-Control": conf.CACHE_CONTROL}
    if not_modified(request, etag, mtime):
        return not_modified_response(headers)
    content_type = mimetypes.guess_type(source.name)[0] or "application/octet-stream"
    response = file_response(
        request,
        open(source.path, "rb", buffering=0),  # the response closes it
        size=source.size,
        content_type=content_type,
        headers={**headers, **SECURITY_HEADERS},
        etag=etag,
        last_modified=mtime,
    )
    return allow_replay(response, source)


def serve_transform(request: HttpRequest, source: Source) -> HttpResponse:
    image = open_image(source)
    if image is None:
        return serve_media_transform(request, source)
    with image:  # the response is made (bytes or a started pipeline reading the file itself) before it closes
        return serve_image_transform(request, source, image)


def serve_image_transform(request: HttpRequest, source: Source, image: Image.Image) -> HttpResponse:
    query = dict(request.GET.lists())
    spec = parse_query(query)
    signing.verify(source.name, query)
    for media_only in spec.media_parameters():
        raise InvalidSpec(media_only, "applies to video and audio sources only")
    if spec.format in MEDIA_FORMATS:
        raise InvalidSpec(
            "format", f"{spec.format} is a video or audio format and this file is an image", ", ".join(IMAGE_FORMATS)
        )

    engine = get_engine(spec.engine or conf.DEFAULT_ENGINE)
    return conditional_transform(
        request, source, spec, engine, lambda negotiated: render_image(source, image, spec, engine, negotiated)
    )


def conditional_transform(
    request: HttpRequest,
    source: Source,
    spec: TransformSpec,
    engine: Engine,
    render: Callable[[str | None], Rendered],
    wait: float | None = None,
) -> HttpResponse:
    """ETag and 304 before any probing, then the result cache seam; shared by images and media.

    ``render(negotiated)`` makes the result on a miss; ``negotiated`` is the format
    picked from Accept for ``format=auto`` (None otherwise).
    """
    negotiated = negotiate(request.headers.get("Accept", "")) if spec.format == "auto" else None
    ingredients = transform_ingredients(source, spec, engine.version(), negotiated)
    etag = transform_etag(ingredients)
    headers = {"ETag": etag, "Cache-Control": conf.CACHE_CONTROL}
    if spec.format == "auto":
        headers["Vary"] = "Accept"
    if not_modified(request, etag):
        return not_modified_response(headers)
    return respond_with(
        request, cache_key(*ingredients), headers, lambda: render(negotiated), wait=wait, source=source
    )


class Rendered(NamedTuple):
    """What ``produce()`` returns: the content type and the finished bytes or a started pipeline."""

    content_type: str
    body: bytes | Pipeline


def render_image(
    source: Source, image: Image.Image, spec: TransformSpec, engine: Engine, negotiated: str | None
) -> Rendered:
    """Check limits from the opened header, plan and start the engine under a work slot.

    An in-process engine decodes ``image`` itself; a pipeline has its first byte ready.
    """
    info = describe(source, image)
    output_format = resolve_format(spec, negotiated, info.format)
    refusal = engine.refusal(info, output_format)
    if refusal:
        raise InvalidSpec("engine", f"{engine.name} cannot make this: {refusal}")
    plan = plan_for((info.width, info.height), spec, int(conf.MAX_DIMENSION))
    job = ImageJob(source, info, plan, output_format, spec.effective_quality, spec.bg, opened=image)

    slot = work_slots().acquire(engine.weight, wait=float(conf.SLOT_WAIT))
    result = engine.render(job, deadline=float(conf.DEADLINE), on_close=slot.release)
    if isinstance(result, Pipeline):
        first_output(result, source, engine.name)
    return Rendered(CONTENT_TYPES[output_format], result)


def respond_with(
    request: HttpRequest,
    key: str,
    headers: dict[str, str],
    produce: Callable[[], Rendered],
    wait: float | None = None,
    source: Source | None = None,
) -> HttpResponse:
    """The seam between "what to make" and "how it is delivered", with the result cache between.

    A hit goes out as a file (sendfile, Range). A miss takes the render lock for
    ``key`` (other threads and worker processes wait for it, then hit), calls
    ``produce()`` and either stores the bytes or streams the pipeline while the
    same bytes fill the cache file. Identical requests meanwhile follow that file
    as it grows; one that waited ``wait`` seconds (default TRANSFORMS_CACHE_WAIT)
    for a render that does not stream renders for itself, uncached.
    Errors from ``produce()`` propagate to the caller's error mapping after the
    lock is released. A hit made from ``source`` may be replayed by the worker
    (``streaming.replay``) while that file is unchanged.
    """
    cache = result_cache()
    if cache is None:
        return fresh_response(produce(), headers)
    try:
        claimed = cache.claim(key, float(conf.CACHE_WAIT) if wait is None else wait,
                              stall=float(streaming_conf.STALL_TIMEOUT))
    except OSError as exc:  # an unwritable or full cache folder must not fail the request
        logger.warning("result cache unusable, serving uncached: %s", exc)
        return fresh_response(produce(), headers)
    if claimed is None:  # an identical render is still running after TRANSFORMS_CACHE_WAIT: make our own
        logger.info("result cache: gave up waiting for %s, rendering uncached", key)
        return fresh_response(produce(), headers)
    if isinstance(claimed, Entry):
        response = cached_response(request, claimed, headers)
        return response if source is None else allow_replay(response, source)
    if isinstance(claimed, Following):
        logger.info("result cache: following the render of %s", key)
        return following_response(claimed, headers)
    lock = claimed
    logger.info("result cache miss: rendering %s", key)
    try:
        rendered = produce()
    except BaseException:
        lock.release()
        raise
    if isinstance(rendered.body, Pipeline):
        try:
            fill = cache.fill(key, rendered.content_type)
        except OSError as exc:
            lock.release()
            logger.warning("result cache unusable, streaming uncached: %s", exc)
            return fresh_response(rendered, headers)
        except BaseException:
            rendered.body.close()
            lock.release()
            raise
        lock.publish(fill.temp)

        def done(committed: bool) -> None:
            lock.release()
            if committed:
                cache.added(fill.header_size + fill.body_bytes)

        return fresh_response(Rendered(rendered.content_type, TeedPipeline(rendered.body, fill, done)), headers)
    try:
        cache.store(key, rendered.content_type, rendered.body)
    except OSError as exc:
        logger.warning("result cache unusable, not storing: %s", exc)
    finally:
        lock.release()
    return fresh_response(rendered, headers)


def fresh_response(rendered: Rendered, headers: dict[str, str]) -> HttpResponse:
    headers = {**headers, **SECURITY_HEADERS}
    if isinstance(rendered.body, bytes):
        return HttpResponse(rendered.body, content_type=rendered.content_type, headers=headers)
    return PipeResponse(rendered.body, rendered.content_type, headers=headers)


def following_response(following: Following, headers: dict[str, str]) -> FileResponse:
    """Another request's render as it arrives: chunked, no Range (the length is not known yet)."""
    return FileResponse(following.body, content_type=following.content_type,
                        headers={**headers, **SECURITY_HEADERS, "Accept-Ranges": "none"})


def cached_response(request: HttpRequest, entry: Entry, headers: dict[str, str]) -> HttpResponse:
    return file_response(
        request,
        entry.file,
        size=entry.size,
        offset=entry.offset,
        content_type=entry.content_type,
        headers={**headers, **SECURITY_HEADERS},
        etag=headers.get("ETag"),
    )


def allow_replay(response: HttpResponse, source: Source) -> HttpResponse:
    """Let the worker answer this exact request again without Django while ``source`` is unchanged.

    Only whole file bodies qualify: their bytes follow from the URL, the request
    headers the worker keys on and the source file (``streaming.replay``).
    """
    if response.status_code == 200 and getattr(response, "file_to_stream", None) is not None:
        mark_replayable(response.file_to_stream, requested_path(source), source.identity)
    return response


def serve_media_transform(request: HttpRequest, source: Source) -> HttpResponse:
    """A transcode, time window or frame grab of a video or audio source, streamed from ffmpeg.

    Same order as images: spec -> signature -> ETag/304 (before ffprobe runs) -> probe
    and limits -> a started ffmpeg whose first byte has arrived -> the stream.
    """
    query = dict(request.GET.lists())
    spec = parse_query(query)
    signing.verify(source.name, query)
    check_media_spec(spec)
    engine = get_engine("ffmpeg")
    # Identical requests follow a transcode as soon as its first bytes are in the cache
    # file. Until then (ffmpeg starting) they wait TRANSCODE_CACHE_WAIT, then stream their
    # own; a frame grab is quick and made whole, so they wait for it (CACHE_WAIT).
    wait = float(conf.CACHE_WAIT if spec.frame is not None else conf.TRANSCODE_CACHE_WAIT)
    return conditional_transform(
        request,
        source,
        spec,
        engine,
        lambda negotiated: Rendered(*render_media(source, spec, engine, negotiated)),
        wait=wait,
    )


def render_media(
    source: Source, spec: TransformSpec, engine: FfmpegEngine, negotiated: str | None
) -> tuple[str, Pipeline]:
    """Probe and check limits, build the job, start ffmpeg under a work slot (released when the
    pipeline closes) and a deadline; returns the content type and the pipeline, its first byte ready."""
    job = media_job(source, probe_media(source), spec, negotiated)
    slot = work_slots().acquire(engine.weight_of(job), wait=float(conf.SLOT_WAIT))
    deadline = float(conf.DEADLINE if job.is_frame else conf.VIDEO_DEADLINE)
    try:
        pipeline = engine.render(job, deadline=deadline, on_close=slot.release)
    except BaseException:
        slot.release()
        raise
    first_output(pipeline, source, engine.name)
    return MEDIA_CONTENT_TYPES[job.format], pipeline


def first_output(pipeline: Pipeline, source: Source, engine_name: str) -> None:
    """Wait for the tool's first byte before committing to 200; a tool that fails at once is a 422,
    one that is still silent at its deadline a 504."""
    try:
        pipeline.wait_for_output()
    except DeadlineExceeded:
        pipeline.close()
        logger.info("%s took too long on %s", engine_name, source.name)
        raise TookTooLong(f"{engine_name} gave no output within the time limit", path=source.name,
                          engine=engine_name) from None
    except PipelineError as exc:
        pipeline.close()
        logger.info("%s failed on %s: %s", engine_name, source.name, exc)
        raise EngineFailed(engine_name, source, exc) from None


class EngineFailed(TransformError):
    status = 422
    code = "unprocessable_source"

    def __init__(self, engine_name: str, source: Source, exc: PipelineError) -> None:
        super().__init__(
            f"{engine_name} could not process this file: {exc.reason}",
            path=source.name,
            engine=engine_name,
            detail=exc.stderr.replace(str(source.path), source.name).strip()[-300:],
        )


def resolve_format(spec: TransformSpec, negotiated: str | None, source_format: str) -> str:
    if spec.format == "auto":
        return negotiated or (source_format if source_format in ("jpeg", "png", "gif") else "jpeg")
    return spec.format or source_format


def transform_ingredients(
    source: Source, spec: TransformSpec, engine_version: str, negotiated: str | None
) -> tuple[str, ...]:
    """Everything that decides a result's bytes: the ETag and the cache key are both made of it."""
    return (source.name, source.version, spec.canonical(), engine_version, negotiated or "")


def transform_etag(ingredients: tuple[str, ...]) -> str:
    return '"' + hashlib.sha256("\n".join(ingredients).encode()).hexdigest()[:32] + '"'


def not_modified(request: HttpRequest, etag: str, mtime: float | None = None) -> bool:
    """If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2)."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        tags = parse_etags(if_none_match)
        return "*" in tags or etag in tags or f"W/{etag}" in tags
    since = request.headers.get("If-Modified-Since")
    if mtime is not None and since:
        when = parse_http_date_safe(since)
        if when is None or when > time.time():
            return False  # not a date, or a date in the future: ignored (RFC 9110 13.1.3)
        return not was_modified_since(since, int(mtime))
    return False


def not_modified_response(headers: dict[str, str]) -> HttpResponseNotModified:
    return HttpResponseNotModified(headers=headers)


MEDIA_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".avif"}
VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".mpg", ".mpeg", ".ts", ".ogv"}
AUDIO_EXTENSIONS = {".mp3", ".m4a", ".aac", ".wav", ".flac", ".ogg", ".opus"}
INDEX_LIMIT = 500


def media_kind(name: str) -> str | None:
    """What the front page shows for a file, from its extension: image, video, audio or nothing."""
    extension = os.path.splitext(name)[1].lower()
    if extension in MEDIA_EXTENSIONS:
        return "image"
    if extension in VIDEO_EXTENSIONS:
        return "video"
    if extension in AUDIO_EXTENSIONS:
        return "audio"
    return None


def index(request: HttpRequest) -> HttpResponse:
    """The front page: every image with a live thumbnail, every clip with a frame grab."""
    root = media_root()
    entries = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            kind = media_kind(name)
            if name.startswith(".") or kind is None:
                continue
            relative = os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")
            entries.append({"name": relative, "kind": kind})
            if len(entries) >= INDEX_LIMIT:
                break
    return render(request, "transforms/index.html", {"entries": entries, "root": root})


@require_safe
def player(request: HttpRequest, path: str) -> HttpResponse:
    """A page that plays one clip: the fragmented MP4 transcode, with WebM as the alternative."""
    try:
        source = resolve(path)
    except TransformError as exc:
        return error_response(exc)
    kind = media_kind(source.name)
    if kind not in ("video", "audio"):
        return error_response(SourceNotFound("no such video or audio file", path=path))
    return render(request, "transforms/player.html", {"name": source.name, "kind": kind})
