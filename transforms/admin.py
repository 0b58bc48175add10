"""Django autodiscovers ``transforms.admin``; the render admin lives in ``transforms.renders.admin``."""

from .renders import admin  # noqa: F401
