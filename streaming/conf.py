"""One lookup for every app's settings: a table of defaults per app, read once per process.

Each app declares its settings once, in a table of names and defaults (``transforms.conf``,
``transforms.renders.conf``, ``streaming.cameras.conf``, ``streaming.conf`` below). That
table is the only place a default is written: ``mediasite/settings.py`` sets a name only
when its environment variable is present (``from_environment``, which casts to the
default's type), and code reads ``conf.NAME`` when it runs. A value is looked up once per process and kept; Django's
``setting_changed`` (sent by ``override_settings`` and pytest-django's ``settings``
fixture) empties the kept values, so tests see their overrides. Before Django is configured
(gunicorn's hooks, a bench script) the defaults apply.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off", ""})


def cast(name: str, raw: str, default: object) -> object:
    """An environment string as the type of its default; ImproperlyConfigured names the variable."""
    if isinstance(default, bool):
        if raw.lower() in TRUE:
            return True
        if raw.lower() in FALSE:
            return False
        raise ImproperlyConfigured(f"{name} must be a boolean, got {raw!r}")
    for kind, words in ((int, "an integer"), (float, "a number")):
        if isinstance(default, kind):
            try:
                return kind(raw)
            except ValueError:
                raise ImproperlyConfigured(f"{name} must be {words}, got {raw!r}") from None
    if isinstance(default, Path):
        return Path(raw)
    return raw


class AppSettings:
    """``conf.NAME`` -> ``settings.<prefix>NAME`` if set, else the table's default, kept until settings change."""

    def __init__(self, prefix: str, defaults: Mapping[str, Any]) -> None:
        self._prefix = prefix
        self._defaults = dict(defaults)
        self._values: dict[str, Any] = {}
        setting_changed.connect(self._setting_changed, weak=False)

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__["_values"]
        if name in values:
            return values[name]
        defaults = self.__dict__["_defaults"]
        if name not in defaults:
            raise AttributeError(f"unknown setting {self.__dict__['_prefix']}{name}")
        value = values[name] = self._read(name, defaults[name])
        return value

    def _read(self, name: str, default: Any) -> Any:
        from django.conf import settings

        if not settings.configured:
            return default
        value = getattr(settings, self._prefix + name, default)
        if default is None or value is None or isinstance(default, bool | str) or isinstance(value, type(default)):
            return value
        return type(default)(value)

    def names(self) -> list[str]:
        return [self._prefix + name for name in self._defaults]

    def from_environment(self, environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
        """The settings this table's environment variables set (empty ones count as unset)."""
        found = {}
        for name, default in self._defaults.items():
            raw = environ.get(self._prefix + name)
            if raw:
                found[self._prefix + name] = cast(self._prefix + name, raw, default)
        return found

    def reset(self) -> None:
        self._values.clear()

    def _setting_changed(self, setting: str = "", **kwargs: Any) -> None:
        if setting.startswith(self._prefix) and setting[len(self._prefix):] in self._defaults:
            self.reset()


DEFAULTS: dict[str, Any] = {
    # How pipe bodies reach the socket under gunicorn: auto (os.splice, else libc via ctypes),
    # os, ctypes, or off (1 MiB copies through Python).
    "SPLICE": "auto",
    # Seconds a streamed response may go without progress (tool silent or client not reading).
    "STALL_TIMEOUT": 30.0,
    # Seconds a request head may take to arrive whole (read on the worker's event loop, never by a
    # thread); past it the client gets 408 and the connection is closed (streaming/loop_heads.py).
    "HEADER_TIMEOUT": 10.0,
    # Replays (streaming/replay.py): per-worker memory for small file responses answered
    # again from gunicorn's event loop; 0 turns them off.
    "REPLAY_BYTES": 16 << 20,
    # Largest body a worker keeps for replays.
    "REPLAY_MAX_BODY": 256 << 10,
    # Seconds a kept response is replayed before the app answers it again.
    "REPLAY_TTL": 10.0,
    # The ffmpeg the camera producers run.
    "FFMPEG": os.environ.get("TRANSFORMS_FFMPEG") or "ffmpeg",
}

conf = AppSettings("STREAMING_", DEFAULTS)

METRICS_DEFAULTS: dict[str, Any] = {
    # Who may read /metrics and /readyz: client addresses or networks (CIDR), comma-separated...
    "ALLOWED_IPS": "127.0.0.0/8,::1",
    # ...or any client sending "Authorization: Bearer <token>" (empty: no token access).
    "TOKEN": "",
    # Peers whose X-Forwarded-For names the client (the proxy in front); the client address is
    # then the last one it added. Direct peers are the client themselves.
    "TRUSTED_PROXIES": "127.0.0.0/8,::1",
    # Seconds /readyz gives all its checks together before it answers.
    "READY_TIMEOUT": 2.0,
}

metrics_conf = AppSettings("METRICS_", METRICS_DEFAULTS)
