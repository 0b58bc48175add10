"""The errors a transform request can end in, each with its HTTP status.

Engines, parsers and probes raise these; ``transforms.views`` is the one place
that turns them into responses (a JSON body naming the problem).
"""

from __future__ import annotations


class TransformError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def as_json(self) -> dict:
        return {"error": self.code, "message": self.message, **self.details}

    def headers(self) -> dict[str, str]:
        """Response headers this error calls for besides the body (Retry-After, WWW-Authenticate)."""
        return {}


class InvalidSpec(TransformError, ValueError):
    """A query parameter is unknown, repeated or out of range."""

    status = 400
    code = "invalid_parameter"

    def __init__(self, parameter: str, message: str, accepted: str = "") -> None:
        details: dict[str, object] = {"parameter": parameter}
        if accepted:
            details["accepted"] = accepted
        super().__init__(f"{parameter}: {message}", **details)
        self.parameter = parameter


class BadSignature(TransformError):
    status = 403
    code = "bad_signature"


class SourceNotFound(TransformError):
    status = 404
    code = "not_found"


class SourceTooLarge(TransformError):
    status = 413
    code = "source_too_large"


class UnsupportedSource(TransformError):
    status = 415
    code = "unsupported_media"


class CorruptSource(TransformError):
    status = 422
    code = "unprocessable_source"


class Unavailable(TransformError):
    """The engine asked for is not installed or not usable here."""

    status = 422
    code = "engine_unavailable"


class NotApplicable(TransformError):
    """A valid parameter this source cannot honour: a frame of an audio file, ``format=png`` of a
    video without ``frame``, a frame past the end."""

    status = 422
    code = "not_applicable"

    def __init__(self, parameter: str, message: str, **details: object) -> None:
        super().__init__(f"{parameter}: {message}", parameter=parameter, **details)
        self.parameter = parameter


class TookTooLong(TransformError):
    """The tool gave no output within TRANSFORMS_DEADLINE and was killed: the server's limit, not bad input."""

    status = 504
    code = "deadline_exceeded"


class Busy(TransformError):
    """Every work slot of this worker stayed taken for the whole wait."""

    status = 503
    code = "busy"

    def __init__(self, retry_after: int) -> None:
        super().__init__("the server is busy; try again shortly")
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}
