"""Shared pieces of the render tests: source media, recipes, ffprobe, the admin form, and the live stack.

``stack`` (gunicorn + a private redis-server + a SQLite file, module-scoped) and
``start_worker`` (real ``manage.py rqworker`` processes) are fixtures: tests/conftest.py
loads this module as a plugin, so every test module may ask for them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests import media_factory
from tests.conftest import PROJECT, Gunicorn, RedisServer, _cmdline, children

TOKEN = "test-render-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FINAL = {"complete", "failed", "canceled"}


@dataclass
class Stack:
    env: dict[str, str]
    media: Path
    server: Gunicorn
    logs: Path

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


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT, env={**os.environ, **env}, check=True,
                   stdout=subprocess.DEVNULL, timeout=120)


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("render-stack")
    media = base / "media"
    media.mkdir()
    make_sources(media)
    redis_server = RedisServer(base)
    env = {
        "REDIS_URL": redis_server.url,
        "DATABASE_URL": f"sqlite:///{base / 'db.sqlite3'}",
        "MEDIA_ROOT": str(media),
        "RENDER_API_TOKEN": TOKEN,
        "RENDER_HEARTBEAT_TIMEOUT": "2",
        "RENDER_SSE_HEARTBEAT": "0.5",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    manage(env, "migrate", "--noinput")
    manage({**env, "DJANGO_SUPERUSER_PASSWORD": "staff-pass"}, "createsuperuser", "--noinput",
           "--username", "staff", "--email", "staff@example.com")
    server = Gunicorn({**env, "_LOGFILE": str(base / "gunicorn.log")}, workers=1, threads=8)
    yield Stack(env, media, server, base)
    server.stop()
    redis_server.stop()


@pytest.fixture
def start_worker(stack) -> Iterator:
    """Start real ``manage.py rqworker`` processes (forking work-horses), stopped at the end."""
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        log = open(stack.logs / f"worker-{time.monotonic_ns()}.log", "ab")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "manage.py", "rqworker", "renders",
             "--worker-class", "transforms.renders.job.RenderWorker"],
            cwd=PROJECT, env={**os.environ, **stack.env}, stdout=log, stderr=log,
        )
        log.close()
        started.append(process)
        return process

    yield start
    for process in started:
        descendants = children(process.pid)
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.send_signal(signal.SIGINT)  # the second one means "now", not after the current job
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pid in descendants:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def make_sources(root: Path) -> None:
    """A 2 s clip with sound, a photo and a 1 s tone, all small."""
    media_factory.clip(root / "clips" / "intro.mp4", seconds=2, size="320x180", fps=15)
    media_factory.save(media_factory.photo(480, 320), root / "photo.jpg", quality=85)
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=220:duration=1", "-c:a", "libmp3lame", str(root / "music.mp3")],
                   check=True, timeout=60)


def small_recipe(fmt: str = "mp4") -> dict:
    """About 2.6 s at 320x180, 15 fps: a video, a zooming still, a title card, crossfades, music."""
    return {
        "size": [320, 180], "fps": 15, "format": fmt,
        "clips": [
            {"video": "clips/intro.mp4", "start": 0.5, "end": 1.7},
            {"image": "photo.jpg", "duration": 1, "zoom": 1.2},
            {"title": "Hello", "duration": 0.8, "font_size": 28, "color": "#ffff00", "background": "#202060"},
        ],
        "crossfade": 0.2,
        "audio": {"source": "music.mp3", "volume": 0.5, "loop": True},
    }


def long_recipe(seconds: int = 20) -> dict:
    """A still that zooms for ``seconds`` (tiny frames, but long enough to stop mid-way)."""
    return {"size": [320, 180], "fps": 12, "clips": [{"image": "photo.jpg", "duration": seconds, "zoom": 1.5}],
            "audio": {"source": "music.mp3", "loop": True}}


def ffprobe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type,codec_name,width,height",
         "-of", "json", str(path)],
        check=True, capture_output=True, timeout=30,
    ).stdout
    return json.loads(out)


def ffmpeg_processes(pid: int) -> list[int]:
    """Descendants of ``pid`` that are ffmpeg (zombies included: their cmdline is empty, so check stat)."""
    found = []
    for child in children(pid):
        try:
            with open(f"/proc/{child}/stat") as stat:
                name = stat.read().split("(", 1)[1].split(")", 1)[0]
        except OSError:
            continue
        if "ffmpeg" in name or "ffmpeg" in _cmdline(child):
            found.append(child)
    return found


def admin_form(clips: list[dict], button: str = "_saveandstart", **fields) -> dict:
    """The POST of the admin's render editor, as a person fills it: top fields, then one row per clip."""
    data = {
        "editor": "form", "size_preset": "custom", "width": 320, "height": 180, "fps": 12, "format": "mp4",
        "crossfade": 0, "audio_source": "", "audio_volume": 1, "audio_start": 0, "recipe_json": "",
        "clips-TOTAL_FORMS": len(clips), "clips-INITIAL_FORMS": 0, "clips-MIN_NUM_FORMS": 0,
        "clips-MAX_NUM_FORMS": 1000, button: "1",
    }
    for index, clip in enumerate(clips):
        kind = next(kind for kind in ("video", "image", "title") if kind in clip)
        data[f"clips-{index}-kind"] = kind
        data[f"clips-{index}-ORDER"] = index + 1
        data.update({f"clips-{index}-{key}": value for key, value in clip.items()})
    data.update(fields)
    return data


@pytest.fixture
def sources(media_root):
    make_sources(media_root)
    return media_root


@pytest.fixture
def rq_redis(redis_url, settings):
    """The private Redis for the queue too (django-rq would keep a stale connection per process)."""
    settings.RQ_QUEUES = {name: {"URL": redis_url} for name in ("default", settings.RENDER_QUEUE)}
    settings.RENDER_API_TOKEN = TOKEN
    return redis_url


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def run_worker() -> None:
    """Run every queued render in this process (rq's SimpleWorker, burst mode)."""
    from rq import SimpleWorker

    from transforms.renders import redis_queue

    SimpleWorker([redis_queue.render_queue()], connection=redis_queue.redis_connection()).work(burst=True)
