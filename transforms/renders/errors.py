"""Every refusal a render request can end in, each an ``HttpError`` that knows its status.

The lifecycle, the recipe check and the API raise these; ``streaming.errors.json_errors``
on the API views is the one place they become JSON responses, and the admin turns the
same exceptions into messages. The codes are part of the API: clients match on them.
"""

from __future__ import annotations

import redis

from streaming.errors import HttpError, Unavailable

# The Redis failures a render survives: the queue and the live progress are in Redis, the row
# is not, so these become a 503 (or a message in the admin) instead of a broken page.
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class NotAuthenticated(HttpError, status=401, code="not_authenticated"):
    """Neither the API token nor a staff session: 401, with the challenge of the token scheme."""


    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="renders"'}


class CsrfFailed(HttpError, status=403, code="csrf_failed"):
    """A session POST without a valid CSRF token (token callers carry no ambient credentials: exempt)."""


    def __init__(self) -> None:
        super().__init__("CSRF token missing or wrong")


class InvalidJson(HttpError, status=400, code="invalid_json"):
    """The request body is not JSON."""

    def __init__(self, problem: Exception) -> None:
        super().__init__(f"the body is not JSON: {problem}")


class InvalidRecipe(HttpError, status=400, code="invalid_recipe"):
    """The recipe has one or more field errors; ``fields`` maps a field path to its messages."""


    def __init__(self, fields: dict[str, list[str]]) -> None:
        names = ", ".join(sorted(fields))
        super().__init__(f"the recipe has errors in: {names}", fields=fields)
        self.fields = fields


class RenderNotFound(HttpError, status=404, code="not_found"):
    """No render has this id (or it is not a UUID at all)."""


    def __init__(self, render_id: object) -> None:
        super().__init__("no such render", task_id=str(render_id))


class RenderConflict(HttpError, status=409, code="conflict"):
    """The render is in a state where the operation makes no sense (cancel a complete render)."""


class QueueUnavailable(Unavailable, code="queue_unavailable"):
    """Redis (the queue and the progress cache) cannot be reached; the client may retry in a few seconds."""


    def __init__(self, problem: object) -> None:
        super().__init__(f"the render queue (Redis) is unreachable: {problem}", retry_after=5)


class UnknownMediaKind(HttpError, status=400, code="invalid_parameter"):
    """The media picker was asked for a kind of file it does not list."""

    def __init__(self, kind: str, kinds: tuple[str, ...]) -> None:
        super().__init__(f"kind must be one of {', '.join(kinds)}", parameter="kind", value=kind[:40])
