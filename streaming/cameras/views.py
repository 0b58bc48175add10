"""Camera pages and streams: the one place where camera errors become HTTP statuses.

    unknown camera -> 404          bad or unknown query parameter -> 400
    source failing -> 503 + Retry-After (JSON names the error; the page shows it)
    CAMERAS_MAX_VIEWERS or this worker's stream slots reached -> 503 + Retry-After
"""

from __future__ import annotations

import fcntl
import logging
import socket
import struct
import termios
import threading
import time
from functools import partial, wraps

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe
from redis.exceptions import RedisError

from ..limits import Saturated, WorkSlots
from . import bus
from .conf import conf
from .fanout import Feed, TooManyViewers, Viewer, feed_for
from .mjpeg import CONTENT_TYPE, MjpegStream
from .registry import Camera, cameras, get_camera

logger = logging.getLogger(__name__)

MAX_FPS = 60.0
NO_STORE = "no-store, no-cache, must-revalidate, max-age=0"

_slots: WorkSlots | None = None
_slots_lock = threading.Lock()


class CameraError(Exception):
    """Everything a camera view refuses with: the status, a code for clients, a message for people."""

    def __init__(self, status: int, code: str, message: str, retry_after: int = 0, **details: object) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.retry_after = retry_after
        self.details = details

    def response(self) -> JsonResponse:
        response = JsonResponse({"error": self.code, "message": self.message, **self.details}, status=self.status)
        response["Cache-Control"] = NO_STORE
        if self.retry_after:
            response["Retry-After"] = str(self.retry_after)
        return response


def stream_slots() -> WorkSlots:
    """This worker's stream slots: long-lived camera responses may hold at most this many threads."""
    global _slots
    with _slots_lock:
        if _slots is None:
            _slots = WorkSlots(conf.CAMERAS_WORKER_STREAMS)
        return _slots


def camera_or_404(name: str) -> Camera:
    camera = get_camera(name)
    if camera is None:
        raise CameraError(404, "unknown_camera", f"no camera named {name!r}", cameras=list(cameras()))
    return camera


def json_errors(view):
    """Map CameraError (and a Redis outage) to JSON answers, so no camera view ends in a 500."""

    @wraps(view)
    def wrapped(request: HttpRequest, name: str) -> HttpResponse:
        try:
            return view(request, name)
        except CameraError as exc:
            return exc.response()
        except RedisError as exc:
            logger.warning("camera %s: relay unavailable: %s", name, exc)
            return CameraError(503, "relay_unavailable", "the camera relay (Redis) is unreachable",
                               retry_after=5).response()

    return wrapped


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
@json_errors
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
@json_errors
def stream(request: HttpRequest, name: str) -> HttpResponse:
    """multipart/x-mixed-replace of the newest frames; ``?fps=`` caps this viewer's rate."""
    camera = camera_or_404(name)
    max_fps = parse_fps(request)
    if request.method == "HEAD":  # a stream has no end to send a HEAD's headers after
        response = HttpResponse(content_type=CONTENT_TYPE)
        response["Cache-Control"] = NO_STORE
        return response
    refuse_if_failing(camera)
    try:
        slot = stream_slots().acquire()
    except Saturated:
        raise CameraError(503, "server_busy", "this worker serves all the streams it may", retry_after=5) from None
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

    body = MjpegStream(
        partial(feed.next_part, viewer), finished, first=first, max_fps=max_fps,
        silence=conf.CAMERAS_STALL_TIMEOUT + 5,
    )
    response = StreamingHttpResponse(body, content_type=CONTENT_TYPE)
    response["Cache-Control"] = NO_STORE
    response["X-Accel-Buffering"] = "no"
    return response


@require_safe
@json_errors
def snapshot(request: HttpRequest, name: str) -> HttpResponse:
    """The newest frame as a JPEG, starting the camera for a moment if nobody is watching."""
    camera = camera_or_404(name)
    if request.GET:
        raise CameraError(400, "invalid_parameter", f"unknown parameter(s): {', '.join(sorted(request.GET))}")
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
    unknown = set(request.GET) - {"fps"}
    if unknown:
        raise CameraError(400, "invalid_parameter", f"unknown parameter(s): {', '.join(sorted(unknown))}",
                          parameter=sorted(unknown)[0], accepted="fps")
    if "fps" not in request.GET:
        return 0.0
    raw = request.GET["fps"]
    try:
        fps = float(raw)
    except ValueError:
        fps = -1.0
    if not 0 < fps <= MAX_FPS:
        raise CameraError(400, "invalid_parameter", f"fps: {raw!r} is not a frame rate", parameter="fps",
                          accepted=f"a number in (0, {MAX_FPS:g}]")
    return fps


def refuse_if_failing(camera: Camera) -> None:
    """While a running producer waits to retry a failed source, say so at once instead of waiting."""
    state = bus.read_status(camera.name)
    if state.get("state") == "failed" and bus.lease_holder(camera.name):
        retry = max(1, int(state.get("retry_at", 0) - time.time() + 0.999))
        raise CameraError(503, "camera_unavailable", state.get("error") or "the source failed",
                          retry_after=retry, camera=camera.name)


def start_viewing(camera: Camera) -> tuple[Feed, Viewer, bytes]:
    """Attach a viewer and wait for its first frame, so a failing source gets a clean 503, not a broken 200."""
    feed = feed_for(camera)
    try:
        viewer = feed.attach()
    except TooManyViewers:
        raise CameraError(503, "too_many_viewers", f"{camera.name} has its maximum of viewers",
                          retry_after=10, camera=camera.name) from None
    timeout = conf.CAMERAS_FIRST_FRAME_TIMEOUT
    try:
        first = feed.next_part(viewer, timeout)
    except BaseException:
        feed.detach(viewer)
        raise
    if isinstance(first, bytes):
        return feed, viewer, first
    feed.detach(viewer)
    message = first if isinstance(first, str) else f"no frame within {timeout:g} s"
    raise CameraError(503, "camera_unavailable", message, retry_after=int(conf.CAMERAS_RESTART_BACKOFF) or 1,
                      camera=camera.name)


def limit_send_time(request: HttpRequest) -> socket.socket | None:
    """gunicorn has no send timeout: a client that stops reading would pin this thread forever."""
    sock = request.META.get("gunicorn.socket")
    seconds = conf.CAMERAS_SEND_TIMEOUT
    if sock is None or seconds <= 0 or not request.META.get("SERVER_PROTOCOL", "").startswith("HTTP/1"):
        return None  # under HTTP/2 the socket is the whole shared connection: leave it alone
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", seconds, 0))
    except OSError:
        return None
    return sock


def drop_if_stuck(sock: socket.socket | None) -> None:
    """Cut a connection whose client stopped reading (bytes still queued when the stream closed).

    gunicorn's gthread closes connections on its main thread and lingers up to 2 s
    for the client's FIN; a client that stopped reading never sends one, and the
    lingering would stall accepts and heartbeats. Shutting both directions here makes
    that close immediate.
    """
    if sock is None:
        return
    try:
        unsent = int.from_bytes(fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"), "little")
        if unsent:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
