"""What a camera view refuses with, on the service's one ``HttpError`` hierarchy.

    unknown camera -> 404          bad or unknown query parameter -> 400
    source failing -> 503 + Retry-After (JSON names the error; the page shows it)
    CAMERAS_MAX_VIEWERS or this worker's stream slots reached -> 503 + Retry-After
    the relay (Redis) unreachable -> 503 + Retry-After

``camera_errors`` wraps every JSON-answering camera view, so none of them ends in a
500 for any of these; ``streaming.errors.error_response`` writes the body and the
headers (Retry-After, and a no-store Cache-Control like every error).
"""

from __future__ import annotations

from ..errors import HttpError, Unavailable, json_errors


class UnknownCamera(HttpError):
    """No camera of that name is configured; the body lists the ones that are."""

    status = 404
    code = "unknown_camera"

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"no camera named {name!r}", cameras=known)


class InvalidParameter(HttpError):
    """An unknown query parameter, or an ``fps`` that is not a frame rate."""

    status = 400
    code = "invalid_parameter"


class CameraUnavailable(Unavailable):
    """The camera's source is failing or sent no first frame in time; retry when it may be back."""

    code = "camera_unavailable"

    def __init__(self, camera: str, message: str, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after, camera=camera)


class ViewersFull(Unavailable):
    """The camera has CAMERAS_MAX_VIEWERS viewers across the deployment."""

    code = "too_many_viewers"

    def __init__(self, camera: str) -> None:
        super().__init__(f"{camera} has its maximum of viewers", retry_after=10, camera=camera)


class StreamsFull(Unavailable):
    """This worker holds CAMERAS_WORKER_STREAMS streams: its other threads stay free for other requests."""

    code = "server_busy"

    def __init__(self) -> None:
        super().__init__("this worker serves all the streams it may", retry_after=5)


RELAY_UNAVAILABLE = Unavailable("the camera relay (Redis) is unreachable", retry_after=5, code="relay_unavailable")

camera_errors = json_errors(redis_unavailable=RELAY_UNAVAILABLE)
