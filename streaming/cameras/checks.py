"""System checks: a bad CAMERAS entry fails at start-up, not on the first viewer.

    cameras.E001  CAMERAS does not parse
    cameras.W001  ffmpeg is not found but a camera needs it
    cameras.W002  a file camera's video is missing or outside MEDIA_ROOT
    cameras.W003  a V4L2 device is not present (now; it may be plugged in later)
"""

from __future__ import annotations

import os
import shutil

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from ..conf import conf as streaming_conf
from .conf import conf
from .registry import parse
from .sources import SourceError, contained_path


@checks.register()
def check_cameras(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    """Parse CAMERAS and look for each source's tool, file or device, so mistakes show at start-up."""
    try:
        cameras = parse(conf.CAMERAS)
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), hint="see the Cameras section of the README", id="cameras.E001")]
    messages: list[checks.CheckMessage] = []
    needs_ffmpeg = [camera.name for camera in cameras.values() if camera.kind != "emulated"]
    if needs_ffmpeg and shutil.which(streaming_conf.FFMPEG) is None:
        messages.append(checks.Warning(
            f"ffmpeg ({streaming_conf.FFMPEG!r}) is not found; cameras {', '.join(needs_ffmpeg)} cannot start",
            hint="install ffmpeg or set STREAMING_FFMPEG", id="cameras.W001",
        ))
    for camera in cameras.values():
        if camera.kind == "file":
            try:
                contained_path(settings.MEDIA_ROOT, camera.target)
            except SourceError as exc:
                messages.append(checks.Warning(f"camera {camera.name}: {exc}", id="cameras.W002", obj=camera.name))
        elif camera.kind == "v4l2" and not os.path.exists(camera.target):
            messages.append(checks.Warning(
                f"camera {camera.name}: {camera.target} is not present", id="cameras.W003", obj=camera.name,
                hint="its page shows the error until the device appears",
            ))
    return messages
