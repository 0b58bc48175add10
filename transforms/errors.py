"""The errors a transform request can end in, each with its HTTP status.

Parsers, planning, probes and engines raise these; ``streaming.errors.error_response``
is the one place that turns them (like every ``HttpError``) into a JSON response.
"""

from __future__ import annotations

from streaming.errors import Busy, HttpError

__all__ = [
    "BadSignature", "Busy", "CorruptSource", "EngineFailed", "EngineUnavailable", "InvalidSpec",
    "NotApplicable", "NotOffered", "SourceNotFound", "SourceTooLarge", "TookTooLong", "TransformError",
    "UnsupportedSource",
]


class TransformError(HttpError):
    """Any refusal of a media request."""


class ParameterError(TransformError):
    """A refusal that names the query parameter at fault: ``{"parameter": ..., "accepted": ...}``."""

    def __init__(self, parameter: str, message: str, accepted: str = "", **details: object) -> None:
        if accepted:
            details["accepted"] = accepted
        super().__init__(f"{parameter}: {message}", parameter=parameter, **details)
        self.parameter = parameter


class InvalidSpec(ParameterError, ValueError, status=400, code="invalid_parameter"):
    """A query parameter is unknown, repeated or out of range, whatever the source."""


class NotApplicable(ParameterError, status=422, code="not_applicable"):
    """A valid parameter this source cannot honour: a frame of an audio file, ``format=png`` of a
    video without ``frame``, a frame past the end."""


class NotOffered(ParameterError, status=404, code="not_offered"):
    """A part this source does not have: an HLS rendition or segment it does not offer, a storyboard
    sheet past the last one, a storyboard of a file without pictures."""


class BadSignature(TransformError, status=403, code="bad_signature"):
    """TRANSFORMS_SIGNING=required and the URL's ``sig`` is missing or does not match."""


class SourceNotFound(TransformError, status=404, code="not_found"):
    """No such file under MEDIA_ROOT, or a path that would leave it."""


class SourceTooLarge(TransformError, status=413, code="source_too_large"):
    """Over a limit read from the header (bytes, pixels, duration) before any decoding."""


class UnsupportedSource(TransformError, status=415, code="unsupported_media"):
    """Not an image, video or audio format this service reads."""


class CorruptSource(TransformError, status=422, code="unprocessable_source"):
    """Damaged, truncated, or not really the format its header or name says."""


class EngineFailed(CorruptSource):
    """A tool refused the source at once (it exited before its first byte): damaged or not what it says."""


class EngineUnavailable(TransformError, status=422, code="engine_unavailable"):
    """The engine asked for is not installed or not usable here."""


class TookTooLong(TransformError, status=504, code="deadline_exceeded"):
    """The tool gave no output within TRANSFORMS_DEADLINE and was killed: the server's limit, not bad input."""

