"""Camera pages and streams: the pages, the MJPEG stream, the snapshot and the status JSON.

Refusals are ``streaming.cameras.errors`` (on the service's one ``HttpError``
hierarchy), turned into JSON by ``camera_errors``; becoming a viewer (slots, the
first frame, the send timeout) is ``streaming.cameras.viewing``.
"""

from __future__ import annotations

import time

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe
from redis.exceptions import RedisError

from ..errors import NO_STORE
from ..responses import LoopResponse
from . import bus
from .conf import conf
from .errors import InvalidParameter, UnknownCamera, camera_errors
from .loop_viewers import MjpegBody
from .mjpeg import CONTENT_TYPE
from .registry import Camera, cameras, get_camera
from .viewing import drop_if_stuck, limit_send_time, refuse_if_failing, start_viewing, take_stream_slot

MAX_FPS = 60.0


def camera_or_404(name: str) -> Camera:
    """The named camera; a JSON 404 listing the configured ones, so a client can correct a typo."""
    camera = get_camera(name)
    if camera is None:
        raise UnknownCamera(name, list(cameras()))
    return camera


# --- pages -------------------------------------------------------------------


@require_safe
def index(request: HttpRequest) -> HttpResponse:
    """Every camera with a low-rate live preview."""
    return render(request, "cameras/index.html", {"cameras": list(cameras().values())})


@require_safe
def camera_page(request: HttpRequest, name: str) -> HttpResponse:
    """One camera: the stream in an <img>, its frame rate, viewer count and any source error."""
    camera = get_camera(name)
    if camera is None:
        return render(request, "cameras/index.html", {"cameras": list(cameras().values()), "missing": name},
                      status=404)
    try:
        status = camera_status(camera)
    except RedisError:
        status = {"state": "unknown", "error": "the camera relay (Redis) is unreachable", "fps": 0, "viewers": 0}
    return render(request, "cameras/camera.html", {"camera": camera, "status": status})


@require_safe
@camera_errors
def status(request: HttpRequest, name: str) -> HttpResponse:
    """The camera's state as JSON (polled by the page)."""
    response = JsonResponse(camera_status(camera_or_404(name)))
    response["Cache-Control"] = NO_STORE
    return response


def camera_status(camera: Camera) -> dict:
    """What the page shows. With no producer running the state is idle; the last error stays visible."""
    state = bus.read_status(camera.name)
    running = bus.lease_holder(camera.name) is not None
    return {
        "name": camera.name,
        "source": camera.description,
        "state": state.get("state", "idle") if running else "idle",
        "error": state.get("error", ""),
        "last_error": state.get("last_error", ""),
        "fps": state.get("fps", 0) if running else 0,
        "frames": state.get("frames", 0),
        "viewers": sum(bus.viewer_counts(camera.name).values()),
        "retry_at": state.get("retry_at", 0),
        "updated": state.get("updated", 0),
    }


# --- stream and snapshot ---------------------------------------------------------


@require_safe
@camera_errors
def stream(request: HttpRequest, name: str) -> HttpResponse:
    """multipart/x-mixed-replace of the newest frames; ``?fps=`` caps this viewer's rate."""
    camera = camera_or_404(name)
    max_fps = parse_fps(request)
    if request.method == "HEAD":  # a stream has no end to send a HEAD's headers after
        response = HttpResponse(content_type=CONTENT_TYPE)
        response["Cache-Control"] = NO_STORE
        return response
    refuse_if_failing(camera)
    slot = take_stream_slot()
    try:
        feed, viewer, first = start_viewing(camera)
    except BaseException:
        slot.release()
        raise

    sock = limit_send_time(request)

    def finished() -> None:
        feed.detach(viewer)
        slot.release()
        drop_if_stuck(sock)

    body = MjpegBody(feed, viewer, first, max_fps=max_fps, silence=conf.CAMERAS_STALL_TIMEOUT + 5, on_close=finished)
    response = LoopResponse(body, content_type=CONTENT_TYPE)  # held by the worker's event loop, not a thread
    response["Cache-Control"] = NO_STORE
    return response


@require_safe
@camera_errors
def snapshot(request: HttpRequest, name: str) -> HttpResponse:
    """The newest frame as a JPEG, starting the camera for a moment if nobody is watching."""
    camera = camera_or_404(name)
    if request.GET:
        raise InvalidParameter(f"unknown parameter(s): {', '.join(sorted(request.GET))}")
    frame = bus.latest_frame(camera.name)
    if frame is None or time.time() - frame.captured > 2.0:
        refuse_if_failing(camera)
        feed, viewer, _ = start_viewing(camera)
        feed.detach(viewer)
        frame = viewer.last.frame
    response = HttpResponse(frame.jpeg, content_type="image/jpeg")
    response["Cache-Control"] = NO_STORE
    response["X-Frame-Seq"] = str(frame.seq)
    return response


def parse_fps(request: HttpRequest) -> float:
    """This viewer's frame-rate cap (0: none); any other parameter is refused rather than ignored."""
    unknown = set(request.GET) - {"fps"}
    if unknown:
        raise InvalidParameter(f"unknown parameter(s): {', '.join(sorted(unknown))}",
                               parameter=sorted(unknown)[0], accepted="fps")
    if "fps" not in request.GET:
        return 0.0
    raw = request.GET["fps"]
    try:
        fps = float(raw)
    except ValueError:
        fps = -1.0
    if not 0 < fps <= MAX_FPS:
        raise InvalidParameter(f"fps: {raw!r} is not a frame rate", parameter="fps",
                               accepted=f"a number in (0, {MAX_FPS:g}]")
    return fps
