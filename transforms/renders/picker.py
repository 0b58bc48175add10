"""The admin's media picker: the files under MEDIA_ROOT an editor can put in a render, with thumbnails.

    GET <admin>/transforms/renderjob/media/?kind=video&q=intro   a page of matches, by path
    GET <admin>/transforms/renderjob/media/?kind=video&path=a.mp4  that one file (or no result)

Files are found by walking MEDIA_ROOT (hidden names skipped, like every media view) and
are offered only when ``sources.resolve`` accepts the name, so a symlink that leaves
MEDIA_ROOT is never listed. A file is offered for a kind when its name says so and the
service can read it as that kind (an unreadable clip would only fail the render later).
Thumbnails are the service's own signed transform URLs; a clip's is a frame grab at a
tenth of its probed length, so the frame is always inside the clip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

from streaming.errors import json_errors

from ..errors import TransformError
from ..formats import media_kind
from ..probe import probe_media
from ..signing import media_url
from ..sources import media_root, probe_image, resolve
from .errors import UnknownMediaKind

KINDS = ("video", "image", "audio")
# Matches per answer, and how many names one search reads at most (a huge library stays quick).
PAGE = 24
MAX_SCANNED = 20_000
MAX_QUERY = 100
THUMBNAIL = "160x90"
# Where in a clip its thumbnail and a render's poster are grabbed, as a share of its length.
FRAME_AT = 0.1


@dataclass(frozen=True)
class MediaEntry:
    path: str
    kind: str
    thumbnail: str  # "" for audio
    duration: float | None  # seconds, for video and audio
    width: int
    height: int


def frame_time(duration: float | None) -> float:
    """A moment inside a clip of ``duration`` seconds worth showing: a tenth in, never past the end."""
    return round(max(0.0, duration or 0.0) * FRAME_AT, 2)


def thumbnail_url(path: str, kind: str, duration: float | None, size: str = THUMBNAIL) -> str:
    if kind == "image":
        return media_url(path, size=size, fit="cover")
    if kind == "video":
        return media_url(path, frame=frame_time(duration), size=size, fit="cover")
    return ""


def describe(path: str, kind: str) -> MediaEntry | None:
    """``path`` as the picker shows it, or None unless it is a readable ``kind`` file inside MEDIA_ROOT."""
    if kind not in KINDS or media_kind(path) != kind:
        return None
    try:
        source = resolve(path)
        if kind == "image":
            image = probe_image(source)
            width, height, duration = image.width, image.height, None
        else:
            info = probe_media(source)
            if not (info.has_video if kind == "video" else info.has_audio):
                return None
            width, height, duration = info.width, info.height, info.duration
    except TransformError:
        return None
    return MediaEntry(path, kind, thumbnail_url(path, kind, duration), duration, width, height)


def media_names(kind: str) -> Iterator[str]:
    """Paths relative to MEDIA_ROOT whose name says ``kind``, sorted folder by folder."""
    root = media_root()
    scanned = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            scanned += 1
            if scanned > MAX_SCANNED:
                return
            if not name.startswith(".") and media_kind(name) == kind:
                yield os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")


def search(kind: str, query: str = "", limit: int = PAGE) -> tuple[list[MediaEntry], bool]:
    """The first ``limit`` usable files of ``kind`` whose path contains ``query`` (any case), and whether more match."""
    needle = query.strip().lower()
    found: list[MediaEntry] = []
    for name in media_names(kind):
        if needle and needle not in name.lower():
            continue
        if len(found) == limit:
            return found, True
        entry = describe(name, kind)
        if entry is not None:
            found.append(entry)
    return found, False


@require_safe
@json_errors
def media_view(request: HttpRequest) -> JsonResponse:
    """The picker's answer (the admin wraps it in ``admin_view``: staff only)."""
    kind = request.GET.get("kind", "")
    if kind not in KINDS:
        raise UnknownMediaKind(kind, KINDS)
    query = request.GET.get("q", "")[:MAX_QUERY]
    if "path" in request.GET:
        entry = describe(request.GET["path"], kind)
        results, more = ([entry] if entry else []), False
    else:
        results, more = search(kind, query)
    return JsonResponse({"kind": kind, "query": query, "results": [asdict(e) for e in results], "more": more})


def seconds_label(seconds: float | None) -> str:
    """``2.6 s``, ``1 min 5 s``: how long something lasts, for people."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s".replace(".0 s", " s")
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def entry_label(entry: MediaEntry) -> str:
    """What the picker says beside a file: its length and picture size (the script builds the same)."""
    parts = [seconds_label(entry.duration)] if entry.duration is not None else []
    if entry.width and entry.height:
        parts.append(f"{entry.width}×{entry.height}")
    return " · ".join(parts)
