"""Every refusal the service makes, and the one place that turns it into a response.

Code below the views raises an ``HttpError`` (or a subclass: ``transforms.errors`` for
media, the render API's and the cameras' own) that knows its status, a short code for
programs and a message for people, plus any details (the parameter, the accepted range).
``json_errors`` wraps every JSON-answering view: it maps the error, and the two failures
that come from below without knowing HTTP (work slots full, Redis gone), to one JSON body,
its status and the headers it calls for (Retry-After, WWW-Authenticate). Anything else is
a bug and stays a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from .limits import Saturated

logger = logging.getLogger("streaming.errors")

NO_STORE = "no-store, no-cache, must-revalidate, max-age=0"
# Sent with every error body: it is JSON for programs, never a page to sniff, frame or cache.
ERROR_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'",
    "Cache-Control": NO_STORE,
}


class HttpError(Exception):
    """A refusal with its status: ``{"error": code, "message": ..., **details}``."""

    status = 400
    code = "bad_request"

    def __init_subclass__(cls, status: int | None = None, code: str | None = None, **kwargs: object) -> None:
        """``class NotFound(HttpError, status=404, code="not_found")``: a refusal is declared in its class line."""
        super().__init_subclass__(**kwargs)
        if status is not None:
            cls.status = status
        if code is not None:
            cls.code = code

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def as_json(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.details}

    def headers(self) -> dict[str, str]:
        """Response headers this error calls for besides the body."""
        return {}


class Unavailable(HttpError, status=503, code="unavailable"):
    """503: something this answer needs is busy or down; the client may retry after ``retry_after`` s."""


    def __init__(self, message: str, retry_after: int = 5, code: str | None = None, **details: object) -> None:
        super().__init__(message, **details)
        self.retry_after = max(1, int(retry_after))
        if code is not None:
            self.code = code

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class Busy(Unavailable, code="busy"):
    """Every work slot of this worker stayed taken for the whole wait."""


    def __init__(self, retry_after: int = 1) -> None:
        super().__init__("the server is busy; try again shortly", retry_after=retry_after)


def redis_errors() -> tuple[type[BaseException], ...]:
    try:
        from redis.exceptions import RedisError
    except ImportError:
        return ()
    return (RedisError,)


def http_error(exc: BaseException, redis_unavailable: Unavailable | None = None) -> HttpError | None:
    """The HttpError an exception means: itself, a full worker, Redis gone (when the view relies on it)."""
    if isinstance(exc, HttpError):
        return exc
    if isinstance(exc, Saturated):
        return Busy(exc.retry_after)
    if redis_unavailable is not None and isinstance(exc, redis_errors()):
        logger.warning("%s: %s", redis_unavailable.message, exc)
        return redis_unavailable
    return None


def error_response(exc: HttpError) -> JsonResponse:
    """The JSON answer for ``exc``: the one place an error becomes a status, a body and headers."""
    from .metrics import REFUSALS  # here, not at import: metrics -> health -> errors

    REFUSALS.labels(exc.code).inc()
    if exc.status >= 422:
        logger.info("refused (%d %s): %s", exc.status, exc.code, exc.message)
    return JsonResponse(exc.as_json(), status=exc.status, headers={**ERROR_HEADERS, **exc.headers()})


def error_bytes(exc: HttpError) -> bytes:
    """``error_response(exc)`` as a whole HTTP/1.1 response that closes its connection, for the event
    loop, which answers some requests (a request head that never completes) without Django's cycle."""
    response = error_response(exc)
    response["Content-Length"] = str(len(response.content))
    response["Connection"] = "close"
    status_line = f"HTTP/1.1 {response.status_code} {response.reason_phrase}\r\n".encode("latin-1")
    return status_line + response.serialize()


def json_errors(
    view: Callable[..., HttpResponse] | None = None, *, redis_unavailable: Unavailable | None = None
) -> Any:
    """Decorate a view so every HttpError (and a full worker, and Redis gone if named) is answered as JSON.

    ``redis_unavailable`` is the 503 to give when the view's Redis is unreachable (the camera
    relay, the render queue); without it a Redis error is a bug like any other.
    """

    def decorate(inner: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(inner)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                return inner(request, *args, **kwargs)
            except Exception as exc:
                error = http_error(exc, redis_unavailable)
                if error is None:
                    raise
                return error_response(error)

        return wrapped

    return decorate(view) if view is not None else decorate
