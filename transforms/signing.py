"""Signed transform URLs: an HMAC over the path and the canonical query.

Built on Django's ``Signer`` (keyed by SECRET_KEY, salted for this use). With
``TRANSFORMS_SIGNING=required`` a transform URL without a valid ``sig`` is
refused with 403, so nobody can make the server render arbitrary sizes.
Originals (no query) are plain files of the media folder and need no signature.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlencode

from django.conf import settings
from django.core.signing import Signer
from django.utils.crypto import constant_time_compare

from .conf import conf
from .errors import BadSignature
from .spec import SIGNATURE_PARAMETER

SALT = "mediasite.transforms.url"


def canonical_query(query: Mapping[str, list[str]]) -> str:
    """Every parameter but ``sig``, sorted, URL-encoded: the same for any parameter order."""
    pairs = sorted((name, value) for name, values in query.items() if name != SIGNATURE_PARAMETER for value in values)
    return urlencode(pairs)


def signature(path: str, query: Mapping[str, list[str]]) -> str:
    return Signer(salt=SALT).signature(f"{path}?{canonical_query(query)}")


def verify(path: str, query: Mapping[str, list[str]]) -> None:
    """Raise BadSignature unless signing is off or ``sig`` matches."""
    if conf.SIGNING == "off":
        return
    given = query.get(SIGNATURE_PARAMETER) or []
    if len(given) != 1:
        raise BadSignature("this URL must be signed", parameter=SIGNATURE_PARAMETER)
    if not constant_time_compare(given[0], signature(path, query)):
        raise BadSignature("the signature does not match this URL", parameter=SIGNATURE_PARAMETER)


def fingerprint() -> str:
    """What the signed URLs written into a result (a playlist) depend on: the mode and the key."""
    return "off" if conf.SIGNING == "off" else signature("", {})


def media_url(path: str, **params: object) -> str:
    """The URL of ``path`` transformed by ``params``, signed (harmless when signing is off).

    ``media_url("photos/1.jpg", size="300x200", fit="cover")``
    -> ``/photos/1.jpg?fit=cover&size=300x200&sig=...``
    """
    path = path.lstrip("/")
    base = settings.MEDIA_URL.rstrip("/") + "/" + quote(path)
    query = {name: [str(value)] for name, value in params.items() if value is not None}
    if not query:
        return base
    return f"{base}?{canonical_query(query)}&{SIGNATURE_PARAMETER}={signature(path, query)}"
