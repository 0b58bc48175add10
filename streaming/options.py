"""Streaming settings: Django's when Django is configured, the given default otherwise.

``streaming`` runs under gunicorn before and without a Django request (worker hooks,
the event loop) and in tests without settings, so each setting has a default here.
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def streaming_option(name: str, default: T) -> T:
    """``settings.<name>`` converted to the default's type, or ``default`` when Django is not configured."""
    try:
        from django.conf import settings

        if settings.configured:
            return type(default)(getattr(settings, name, default))
    except ImportError:
        pass
    return default
