"""File bodies for ``wsgi.file_wrapper`` (sendfile), with single byte ranges.

A regular file handed to Django's ``FileResponse`` reaches gunicorn's
``wsgi.file_wrapper`` untouched, and gunicorn sends it with sendfile(2) from the
fd's current offset for Content-Length bytes. ``FileSlice`` uses exactly that: it
positions the fd at the first byte of the slice and bounds ``read()`` (for
servers without sendfile) to the slice, so one object serves a whole file, a
byte range of it, or the body of a cache file that starts with a header line.

``file_response`` answers ``Range: bytes=...`` with 206 + Content-Range for one
satisfiable range, 416 + ``Content-Range: bytes */size`` when none is, and the
whole body otherwise (multiple ranges, a malformed header, or an ``If-Range``
that no longer matches), as RFC 9110 section 14 allows.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import BinaryIO

from django.http import FileResponse, HttpRequest, HttpResponse
from django.utils.http import parse_http_date_safe

from .bodies import FileBody

BLOCK_SIZE = 1 << 20
RANGE_RE = re.compile(r"^bytes=\s*(\d*)\s*-\s*(\d*)\s*$")


class Unsatisfiable(Exception):
    """The Range names no byte of the body."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` inclusive for one range; None to send the whole body; raises Unsatisfiable."""
    if not header:
        return None
    match = RANGE_RE.match(header.strip())
    if not match:
        return None  # several ranges or a malformed one: ignored, the whole body is sent
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable()
        return max(0, size - suffix), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # invalid range: ignored
    if start >= size:
        raise Unsatisfiable()
    return start, min(end, size - 1)


class FileSlice(FileBody):
    """``length`` bytes of an open file from ``offset``: fileno() for sendfile, a bounded read() otherwise."""

    def __init__(self, file: BinaryIO, offset: int, length: int) -> None:
        self._file = file
        self.length = length
        self._left = length
        os.lseek(file.fileno(), offset, os.SEEK_SET)

    def fileno(self) -> int:
        return self._file.fileno()

    def read(self, size: int = BLOCK_SIZE) -> bytes:
        if self._left <= 0:
            return b""
        if size is None or size < 0 or size > self._left:
            size = self._left
        chunk = os.read(self._file.fileno(), size)
        self._left -= len(chunk)
        return chunk

    def close(self) -> None:
        self._file.close()


def if_range_allows(request: HttpRequest, etag: str | None, last_modified: float | None) -> bool:
    """A Range applies unless If-Range names another version (a strong ETag or the exact date)."""
    condition = request.headers.get("If-Range")
    if not condition:
        return True
    if condition.startswith('"') or condition.startswith("W/"):
        return etag is not None and condition == etag and not condition.startswith("W/")
    when = parse_http_date_safe(condition)
    return when is not None and last_modified is not None and int(last_modified) == when


def file_response(
    request: HttpRequest,
    file: BinaryIO,
    *,
    size: int,
    content_type: str,
    offset: int = 0,
    headers: Mapping[str, str] | None = None,
    etag: str | None = None,
    last_modified: float | None = None,
) -> HttpResponse:
    """The body ``file[offset:offset+size]`` as a sendfile-able response, honouring one Range.

    Takes ownership of ``file`` (closed by the response, or here when no body is sent: a 416 or a HEAD).
    """
    extra = dict(headers or {})
    extra["Accept-Ranges"] = "bytes"
    first, last = 0, size - 1
    status = 200
    try:
        wanted = parse_range(request.headers.get("Range"), size) if request.method in ("GET", "HEAD") else None
    except Unsatisfiable:
        file.close()
        return HttpResponse(status=416, content_type=content_type,
                            headers={"Content-Range": f"bytes */{size}", **extra})
    if wanted is not None and if_range_allows(request, etag, last_modified):
        first, last = wanted
        status = 206
        extra["Content-Range"] = f"bytes {first}-{last}/{size}"
    length = max(0, last - first + 1)
    if request.method == "HEAD":  # the GET's headers; a file body on a HEAD would only be dropped by the server
        file.close()
        return HttpResponse(status=status, content_type=content_type,
                            headers={"Content-Length": str(length), **extra})
    response = FileResponse(FileSlice(file, offset + first, length), status=status, content_type=content_type,
                            headers={"Content-Length": str(length), **extra})
    response.block_size = BLOCK_SIZE
    return response
