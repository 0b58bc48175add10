"""What the render admin shows of a render: poster, length, the recipe as a list, the player.

Thumbnails and posters are the service's own signed transform URLs (frame grabs of the
output a tenth into its planned length, so always inside it). A render that is not complete yet still has a
known output name (``renders/<id>.<format>``, ``job.py``) and a planned length, so its
page carries the player and its poster ready, shown by the page's script the moment the
render completes.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from ..signing import media_url
from .forms import CLIP_LABELS
from .job import RENDERS_DIR
from .models import RenderJob, RenderStatus
from .picker import describe, frame_time, seconds_label
from .recipes import planned_seconds

LIST_THUMBNAIL = "96x54"
# The player's poster fits in this box, keeping the render's aspect ratio.
POSTER_BOX = (640, 360)


def output_name(render: RenderJob) -> str:
    """Where the render's file is (or will be) under MEDIA_ROOT."""
    return render.output or f"{RENDERS_DIR}/{render.pk}.{render.recipe.get('format', 'mp4')}"


def render_seconds(render: RenderJob) -> float | None:
    """How long the render lasts, from its recipe (sources probed once per version, so a long list stays cheap)."""
    return planned_seconds(render.recipe)


def poster_size(recipe: dict[str, Any]) -> tuple[int, int]:
    width, height = recipe.get("size", [1280, 720])
    scale = min(POSTER_BOX[0] / width, POSTER_BOX[1] / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def poster_url(render: RenderJob, size: str, seconds: float | None) -> str:
    """A frame of the output a tenth of ``seconds`` in (the same URL before and after the file exists)."""
    return media_url(output_name(render), frame=frame_time(seconds), size=size, fit="cover")


def player(render: RenderJob) -> dict[str, Any]:
    """The template context of the player: shown at once when complete, else kept for the script to show."""
    seconds = render_seconds(render)
    width, height = poster_size(render.recipe)
    name = output_name(render)
    return {
        "complete": render.status == RenderStatus.COMPLETE and bool(render.output),
        "name": name,
        "url": settings.MEDIA_URL + name,
        "poster": poster_url(render, f"{width}x{height}", seconds),
        "width": width,
        "height": height,
        "seconds": seconds_label(seconds),
    }


def list_thumbnail(render: RenderJob) -> dict[str, Any]:
    """The change list's picture: the output's poster once complete, else the first clip's thumbnail, faded."""
    if render.status == RenderStatus.COMPLETE and render.output:
        return {"url": poster_url(render, LIST_THUMBNAIL, render_seconds(render)), "final": True}
    for clip in render.recipe.get("clips", []):
        kind = "video" if "video" in clip else "image" if "image" in clip else None
        entry = describe(clip[kind], kind) if kind else None
        if entry is not None:
            return {"url": entry.thumbnail, "final": False}
    return {"url": "", "final": False}


def clip_rows(recipe: dict[str, Any]) -> list[dict[str, Any]]:
    """The recipe's clips for people: a number, what it is, a thumbnail, the figures that matter."""
    rows = []
    for number, clip in enumerate(recipe.get("clips", []), start=1):
        kind = next(kind for kind in CLIP_LABELS if kind in clip)
        entry = describe(clip[kind], kind) if kind != "title" else None
        if kind == "video":
            end = clip.get("end")
            detail = f"{clip['video']}, {clip.get('start', 0):g} s to {'the end' if end is None else f'{end:g} s'}"
        elif kind == "image":
            detail = f"{clip['image']}, {clip['duration']:g} s, zoom {clip['zoom']:g}"
        else:
            detail = f"“{clip['title']}”, {clip['duration']:g} s, {clip['font_size']} px"
        rows.append({"number": number, "label": CLIP_LABELS[kind], "kind": kind, "detail": detail,
                     "thumbnail": entry.thumbnail if entry else "", "clip": clip})
    return rows
