"""What /readyz asks of transforms: the database, the media folder, the engines' tools.

The same facts the system checks report at start-up (``transforms.checks``), asked again
on every readiness probe, because a mount that went away or a tool removed by an upgrade
happens while the service runs.
"""

from __future__ import annotations

import os

from django.db import connection

from streaming.health import register_check

from .engines import ENGINES
from .sources import media_root


def database_ready() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connection.close()  # this runs in a readiness thread: leave no connection behind
    return connection.vendor


def media_root_ready() -> str:
    root = media_root()
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    if not os.access(root, os.R_OK | os.X_OK):
        raise PermissionError(f"{root} is not readable")
    return str(root)


def engines_ready() -> str:
    problems = [f"{engine.name}: {problem}" for engine in ENGINES.values() if (problem := engine.check())]
    if problems:
        raise RuntimeError("; ".join(problems))
    return ", ".join(ENGINES)


def register() -> None:
    register_check("database", database_ready)
    register_check("media_root", media_root_ready)
    register_check("engines", engines_ready)
