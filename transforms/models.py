"""Django finds the app's models here; the render job row lives in ``transforms.renders.models``."""

from .renders.models import RenderJob, RenderStatus  # noqa: F401
