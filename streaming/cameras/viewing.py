"""Becoming a viewer: the limits, waits and socket settings every camera stream goes through.

Admission is bounded twice (this worker's stream slots, the camera's viewers across
the deployment), the first frame is awaited in the request's thread before the status
line (a failing source gets a clean 503, not a broken 200), and the socket gets the
send timeout gunicorn does not have for when a thread streams it (TLS, other servers;
under the splice worker the event loop holds the stream and times sends out itself).
The views (``streaming.cameras.views``) only put these together.
"""

from __future__ import annotations

import fcntl
import socket
import struct
import termios
import time

from django.http import HttpRequest

from ..limits import Saturated, Slot, process_slots
from . import bus
from .conf import conf
from .errors import CameraUnavailable, StreamsFull, ViewersFull
from .fanout import Feed, TooManyViewers, Viewer, feed_for
from .registry import Camera

# This worker's stream slots: how many camera streams it holds at once (CAMERAS_WORKER_STREAMS).
stream_slots = process_slots(lambda: conf.CAMERAS_WORKER_STREAMS)


def take_stream_slot() -> Slot:
    """One of this worker's stream slots, or StreamsFull (503) at once."""
    try:
        return stream_slots().acquire()
    except Saturated:
        raise StreamsFull() from None


def refuse_if_failing(camera: Camera) -> None:
    """While a running producer waits to retry a failed source, say so at once instead of waiting."""
    state = bus.read_status(camera.name)
    if state.get("state") == "failed" and bus.lease_holder(camera.name):
        retry = max(1, int(state.get("retry_at", 0) - time.time() + 0.999))
        raise CameraUnavailable(camera.name, state.get("error") or "the source failed", retry)


def start_viewing(camera: Camera) -> tuple[Feed, Viewer, bytes]:
    """Attach a viewer and wait for its first frame, so a failing source gets a clean 503, not a broken 200."""
    feed = feed_for(camera)
    try:
        viewer = feed.attach()
    except TooManyViewers:
        raise ViewersFull(camera.name) from None
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
    raise CameraUnavailable(camera.name, message, int(conf.CAMERAS_RESTART_BACKOFF) or 1)


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
    if sock is None or sock.fileno() < 0:  # closed already (the event loop held and closed it)
        return
    try:
        unsent = int.from_bytes(fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"), "little")
        if unsent:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
