"""A render deployment of real processes for the live tests: gunicorn, ``manage.py rqworker``, Redis, a database.

The fixtures ``stack`` (module-scoped: gunicorn, a private Redis, a SQLite file) and
``start_worker`` are loaded for every test module (``pytest_plugins`` in tests/conftest.py).
``build_stack`` migrates a database (a SQLite file, or a PostgreSQL database from
``tests.postgres``), makes a staff user, and starts gunicorn against a Redis the caller
owns (a ``RedisServer``, which the fault tests stop and restart under it). ``Workers``
starts render workers exactly as the README says, a bare ``python manage.py rqworker``, and
stops them with everything they forked.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.conftest import PROJECT, Gunicorn, RedisServer, children, stop_process
from tests.render_helpers import TOKEN, make_sources

AUTH = {"Authorization": f"Bearer {TOKEN}"}
FINAL = {"complete", "failed", "canceled"}


@dataclass
class Stack:
    env: dict[str, str]
    media: Path
    server: Gunicorn
    logs: Path
    redis: RedisServer
    database_url: str

    @property
    def url(self) -> str:
        return self.server.url

    def submit(self, recipe: dict) -> dict:
        response = requests.post(f"{self.url}/api/renders/", json=recipe, headers=AUTH, timeout=10)
        assert response.status_code == 202, response.text
        return response.json()

    def status(self, task_id: str) -> dict:
        response = requests.get(f"{self.url}/api/renders/{task_id}", headers=AUTH, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def log_in(self, page, next_path: str) -> None:
        """Log in to the admin as the stack's staff user, by typing, and land on ``next_path``."""
        page.goto(f"{self.url}/admin/login/?next={next_path}")
        page.fill("#id_username", "staff")
        page.fill("#id_password", "staff-pass")
        page.click("input[type=submit]")
        page.wait_for_url(f"**{next_path}")

    def wait_for(self, task_id: str, condition, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(task_id)
            if condition(status):
                return status
            time.sleep(0.05)
        raise AssertionError(f"condition not reached: {status}")

    def row(self, task_id: str) -> dict:
        """The render's database row as it is now, read past the web side (which would settle it)."""
        columns = "status, stage, error, attempts, rq_job_id, progress"
        query = f"SELECT {columns} FROM transforms_renderjob WHERE id = %s"
        if self.database_url.startswith("sqlite:///"):
            with sqlite3.connect(self.database_url.removeprefix("sqlite:///")) as connection:
                found = connection.execute(query.replace("%s", "?"), (task_id.replace("-", ""),)).fetchone()
        else:
            import psycopg

            with psycopg.connect(self.database_url.replace("postgres://", "postgresql://", 1)) as connection:
                found = connection.execute(query, (task_id,)).fetchone()
        assert found is not None, f"no row for {task_id}"
        return dict(zip([name.strip() for name in columns.split(",")], found, strict=True))


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT, env={**os.environ, **env}, check=True,
                   stdout=subprocess.DEVNULL, timeout=120)


def build_stack(base: Path, redis: RedisServer, database_url: str | None = None, workers: int = 1, threads: int = 8,
                **settings: str) -> Stack:
    """Media, a migrated database with a staff user, and gunicorn on ``redis``; ``settings`` are more env vars."""
    media = base / "media"
    media.mkdir()
    make_sources(media)
    database_url = database_url or f"sqlite:///{base / 'db.sqlite3'}"
    env = {
        "REDIS_URL": redis.url,
        "DATABASE_URL": database_url,
        "MEDIA_ROOT": str(media),
        "RENDER_API_TOKEN": TOKEN,
        "RENDER_HEARTBEAT_TIMEOUT": "2",
        "RENDER_SSE_HEARTBEAT": "0.5",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        **settings,
    }
    manage(env, "migrate", "--noinput")
    manage({**env, "DJANGO_SUPERUSER_PASSWORD": "staff-pass"}, "createsuperuser", "--noinput",
           "--username", "staff", "--email", "staff@example.com")
    server = Gunicorn({**env, "_LOGFILE": str(base / "gunicorn.log")}, workers=workers, threads=threads)
    return Stack(env, media, server, base, redis, database_url)


@dataclass
class Workers:
    """Real render workers of a stack: ``python manage.py rqworker`` with no queue and no worker class."""

    stack: Stack
    started: list[subprocess.Popen] = field(default_factory=list)

    def start(self, *args: str) -> subprocess.Popen:
        log = open(self.stack.logs / f"worker-{time.monotonic_ns()}.log", "ab")  # noqa: SIM115
        process = subprocess.Popen([sys.executable, "manage.py", "rqworker", *args], cwd=PROJECT,
                                   env={**os.environ, **self.stack.env}, stdout=log, stderr=log)
        log.close()
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        """A warm stop (SIGTERM), then SIGKILL for what is left, the work horses and their ffmpeg included."""
        for process in self.started:
            descendants = children(process.pid)
            if process.poll() is None:
                stop_process(process, 10)
            for pid in descendants:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.started.clear()


def read_events(response: requests.Response, until_final: bool = True) -> Iterator[dict]:
    """Parse an event stream as it arrives: one dict per block (comments under 'comment')."""
    block: dict[str, list[str]] = {}
    for raw in response.iter_lines(chunk_size=1, decode_unicode=True):
        if raw == "":
            if block:
                yield block
            block = {}
            continue
        name, _, value = raw.partition(":")
        block.setdefault(name or "comment", []).append(value.removeprefix(" "))


def parent_of(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0


def horse_of(worker: subprocess.Popen) -> int | None:
    """The work horse of a worker: its child that leads a process group of its own (the scheduler does not)."""
    for pid in children(worker.pid):
        try:
            if os.getpgid(pid) == pid and parent_of(pid) == worker.pid:
                return pid
        except ProcessLookupError:
            continue
    return None


def zombies_of(pid: int) -> list[int]:
    found = []
    for child in children(pid):
        try:
            with open(f"/proc/{child}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    found.append(child)
        except OSError:
            continue
    return found


def scheduler_of(worker: subprocess.Popen) -> int | None:
    """rq's scheduler process (``--with-scheduler``): the worker's child that is neither its horse nor a zombie."""
    horse, dead = horse_of(worker), zombies_of(worker.pid)
    found = [pid for pid in children(worker.pid) if pid not in (horse, *dead) and parent_of(pid) == worker.pid]
    return found[0] if found else None


def gone(pid: int) -> bool:
    """Exited and reaped: a zombie still has its /proc entry."""
    return not os.path.exists(f"/proc/{pid}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("render-stack")
    redis_server = RedisServer(base)
    built = build_stack(base, redis_server)
    yield built
    built.server.stop()
    redis_server.stop()


@pytest.fixture
def start_worker(stack) -> Iterator:
    """Start real ``manage.py rqworker`` processes (forking work-horses), stopped at the end."""
    workers = Workers(stack)
    yield workers.start
    workers.stop_all()

# The stack (gunicorn, redis-server, SQLite) and the workers are the fixtures ``stack`` and
# ``start_worker`` in tests/render_helpers.py (shared with test_render_editor_live.py).
