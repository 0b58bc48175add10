"""The render API: submit, read, follow (Server-Sent Events) and cancel renders.

    POST /api/renders/              recipe JSON -> 202 + status object (400 field errors, 503 Redis down)
    GET  /api/renders/<id>          status object
    GET  /api/renders/<id>/events   text/event-stream of status objects until a final state
    POST /api/renders/<id>/cancel   202 + status object (409 when already final)

Callers are staff users with a session (the admin's progress bars) or clients sending
``Authorization: Bearer <RENDER_API_TOKEN>``. Session callers that POST must send the CSRF
token like any Django form; token callers are exempt, as they carry no ambient credentials.
Every refusal is an ``HttpError`` (``errors.py``) that ``streaming.errors.json_errors``
turns into its JSON answer; a Redis failure nobody caught becomes the queue's 503.
"""

from __future__ import annotations

import hmac
import json
import time
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from streaming.errors import json_errors
from streaming.sse import EventStream, EventStreamBody, EventStreamResponse, last_event_id

from . import lifecycle
from .conf import conf
from .errors import CsrfFailed, InvalidJson, NotAuthenticated, QueueUnavailable, RenderNotFound
from .models import STATE_CODES, RenderJob, RenderStatus
from .progress import read_snapshot_quietly
from .recipes import validate_recipe

# EventSource reconnects after this many milliseconds when a stream drops.
SSE_RETRY_MS = 2000
# How often an event stream looks at the cache for a newer snapshot (seconds).
SSE_POLL_SECONDS = 0.2
# How often an event stream re-reads the row (abandonment checks, final states).
SSE_ROW_SECONDS = 1.0
# The answer to a Redis error that reached a view without being handled below it.
QUEUE_DOWN = QueueUnavailable("a Redis command failed")


def _token_ok(request: HttpRequest) -> bool:
    expected = str(conf.API_TOKEN or "")
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not expected or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer "):].strip().encode(), expected.encode())


def _csrf_failure(request: HttpRequest) -> HttpResponse | None:
    check = CsrfViewMiddleware(lambda req: HttpResponse())
    check.process_request(request)
    return check.process_view(request, lambda req: HttpResponse(), (), {})


def authenticate(request: HttpRequest) -> None:
    """Let the token or a staff session through (a session POST also needs its CSRF token); raise otherwise."""
    if _token_ok(request):
        return
    user = getattr(request, "user", None)
    if user is None or not user.is_active or not user.is_staff:
        raise NotAuthenticated("log in as staff or send Authorization: Bearer <token>")
    if request.method == "POST" and _csrf_failure(request) is not None:
        raise CsrfFailed()


def api_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Authenticate every call; ``json_errors`` answers every refusal (and Redis gone) as JSON."""

    @csrf_exempt
    @json_errors(redis_unavailable=QUEUE_DOWN)
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        authenticate(request)
        return view(request, *args, **kwargs)

    return wrapper


def _render_or_404(render_id: str) -> RenderJob:
    try:
        return RenderJob.objects.get(pk=uuid.UUID(str(render_id)))
    except (ValueError, RenderJob.DoesNotExist):
        raise RenderNotFound(render_id) from None


def status_object(request: HttpRequest, render: RenderJob, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    """The object DESIGN.md names, with absolute URLs for the output and the render's own endpoints."""
    fields = fields if fields is not None else lifecycle.live_status(render)
    videos = [request.build_absolute_uri(settings.MEDIA_URL + fields["output"])] if fields["output"] else []
    return {
        "task_id": str(render.pk),
        "state": STATE_CODES[RenderStatus(fields["status"])],
        "status": fields["status"],
        "progress": fields["progress"],
        "stage": fields["stage"],
        "fps": fields["fps"],
        "eta_seconds": fields["eta_seconds"],
        "error": fields["error"] or None,
        "videos": videos,
        "started": render.started,
        "links": {
            "self": request.build_absolute_uri(reverse("render-status", args=[render.pk])),
            "events": request.build_absolute_uri(reverse("render-events", args=[render.pk])),
            "cancel": request.build_absolute_uri(reverse("render-cancel", args=[render.pk])),
        },
    }


@require_POST
@api_view
def submit(request: HttpRequest) -> HttpResponse:
    """Validate the recipe, create the row, queue it. Nothing is created when either step fails."""
    try:
        data = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidJson(exc) from None
    recipe = validate_recipe(data)
    user = request.user if getattr(request, "user", None) and request.user.is_authenticated else None
    render = RenderJob.objects.create(recipe=recipe, created_by=user)
    try:
        render = lifecycle.start(render)
    except QueueUnavailable:
        render.delete()
        raise
    response = JsonResponse(status_object(request, render), status=202)
    response["Location"] = reverse("render-status", args=[render.pk])
    return response


@require_GET
@api_view
def status(request: HttpRequest, render_id: str) -> HttpResponse:
    render = lifecycle.refresh(_render_or_404(render_id))
    return JsonResponse(status_object(request, render))


@require_POST
@api_view
def cancel(request: HttpRequest, render_id: str) -> HttpResponse:
    render = lifecycle.cancel(_render_or_404(render_id))
    return JsonResponse(status_object(request, render), status=202)


@require_GET
@api_view
def events(request: HttpRequest, render_id: str) -> HttpResponse:
    """Status objects as Server-Sent Events, each with an ``id:``; ends after a final state."""
    render = _render_or_404(render_id)
    try:
        resume_from = int(last_event_id(request.META) or request.GET.get("last_event_id") or 0)
    except ValueError:
        resume_from = 0
    if render.is_final and resume_from >= lifecycle.live_status(render)["seq"]:
        return HttpResponse(status=204)  # the client saw the final event: 204 tells EventSource to stop
    first = EventStream().frame(retry_ms=SSE_RETRY_MS, comment="render events")
    body = EventStreamBody(RenderEvents(request, render.pk, resume_from).poll, first=first,
                           interval=SSE_POLL_SECONDS, heartbeat=conf.SSE_HEARTBEAT)
    return EventStreamResponse(body)


class RenderEvents:
    """What one event stream has sent, and ``poll``: each newer status once, until a final state.

    The cache (cheap) is read on every poll, the row when the snapshot changed and at least
    every SSE_ROW_SECONDS (abandonment checks, final states). Under the splice worker the
    polls run on the worker's threads and the event loop sends what they return
    (``streaming.sse``), so the database is never touched from the loop.
    """

    def __init__(self, request: HttpRequest, render_id: uuid.UUID, resume_from: int) -> None:
        self.request = request
        self.render_id = render_id
        self.sent = resume_from
        self.framer = EventStream()
        self.last_row_read = float("-inf")
        self.last_snapshot_seq: int | None = None

    def poll(self) -> tuple[list[bytes], bool]:
        """The events to send now, and whether the stream ends after them."""
        try:
            now = time.monotonic()
            snapshot = read_snapshot_quietly(self.render_id)
            snapshot_seq = snapshot.get("seq") if snapshot else None
            if snapshot_seq == self.last_snapshot_seq and now - self.last_row_read < SSE_ROW_SECONDS:
                return [], False
            self.last_snapshot_seq = snapshot_seq
            self.last_row_read = now
            try:
                render = lifecycle.refresh(RenderJob.objects.get(pk=self.render_id))
            except RenderJob.DoesNotExist:
                gone = {"task_id": str(self.render_id), "error": "the render was deleted"}
                return [self.framer.frame(gone, event="gone")], True
            fields = lifecycle.live_status(render)
            frames = []
            if fields["seq"] > self.sent:
                self.sent = fields["seq"]
                frames.append(self.framer.frame(status_object(self.request, render, fields), id=self.sent,
                                                event="status"))
            return frames, render.is_final
        finally:
            close_old_connections()
