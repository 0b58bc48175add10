"""Shared fixtures: a media folder per test, generated images, real gunicorn, leak checks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests import media_factory

# The database fixture (SQLite and PostgreSQL) and the run's PostgreSQL server live in tests/postgres.py.
from tests.postgres import (  # noqa: F401  (fixtures and a hook, found here by pytest)
    _route_to_database,
    database,
    django_db_modify_db_settings,
    postgres_or_reason,
    postgres_server,
    pytest_collection_modifyitems,
)

PROJECT = Path(__file__).resolve().parents[1]
# The render stack's fixtures (``stack``, ``start_worker``) live beside the other render helpers.
pytest_plugins = ["tests.render_stack"]


@pytest.fixture(autouse=True)
def private_result_cache(tmp_path: Path, settings) -> Path:
    """Every test gets its own result cache folder: never the checkout's var/cache."""
    settings.TRANSFORMS_CACHE_DIR = tmp_path / "cache"
    return settings.TRANSFORMS_CACHE_DIR


@pytest.fixture
def media_root(tmp_path: Path, settings) -> Path:
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    settings.TRANSFORMS_CACHE_DIR = tmp_path / "cache"
    settings.ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
    return root


def serve_media_from(settings, root: Path) -> Path:
    """Make ``root`` the MEDIA_ROOT that Django's test client is served from."""
    settings.MEDIA_ROOT = root
    settings.ALLOWED_HOSTS = ["testserver"]
    return root


@pytest.fixture
def photos(media_root: Path) -> dict[str, Path]:
    """A set of generated sources inside media_root."""
    return {
        "hd": media_factory.save(media_factory.photo(1920, 1080), media_root / "hd.jpg", quality=90),
        "big": media_factory.save(media_factory.photo(4000, 3000), media_root / "big.jpg", quality=90),
        "png": media_factory.save(media_factory.photo(640, 480), media_root / "pic.png"),
        "small": media_factory.save(media_factory.photo(200, 100), media_root / "small.jpg", quality=90),
    }


@pytest.fixture(scope="session")
def long_clip(tmp_path_factory) -> Path:
    """A 10-minute source (testsrc2 and a tone, 160x90 at 5 fps, about 10 MB), made once per session:
    what HLS seeks and storyboards are about, at almost no cost. Its folder can be a MEDIA_ROOT."""
    return media_factory.clip(tmp_path_factory.mktemp("long") / "long.mp4", seconds=600, size="160x90", fps=5)


@pytest.fixture
def work_slots(monkeypatch, settings):
    """Give this process ``capacity`` work slots and no wait for one: ``slots = work_slots(1)``."""
    from streaming.limits import WorkSlots

    def install(capacity: int) -> WorkSlots:
        settings.TRANSFORMS_SLOT_WAIT = 0
        slots = WorkSlots(capacity)
        monkeypatch.setattr("transforms.work.work_slots", lambda: slots)
        return slots

    return install


@pytest.fixture
def shared_media() -> Path:
    if not media_factory.SHARED_MEDIA.is_dir():
        pytest.skip("../shared/media is not present (it is an extra corpus)")
    return media_factory.SHARED_MEDIA


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, timeout: float = 20.0, step: float = 0.05):
    """Poll ``condition`` until it is truthy and return that value; AssertionError at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("condition not met in time")
        time.sleep(step)


def wait_until(condition, timeout: float = 10.0) -> bool:
    """Like ``wait_for`` but answers False at the timeout, for ``assert wait_until(...)``."""
    try:
        return bool(wait_for(condition, timeout))
    except AssertionError:
        return False


def open_fds(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (including zombies), from /proc."""
    found: list[int] = []
    parents = {pid}
    changed = True
    table: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                table[int(entry)] = int(fields[1])
            except OSError:
                continue
    while changed:
        changed = False
        for child, parent in table.items():
            if parent in parents and child not in parents:
                parents.add(child)
                found.append(child)
                changed = True
    return found


@contextmanager
def same_open_fd_count(pid: int | str = "self", settle: float = 3.0) -> Iterator[None]:
    """Fail if the process ends the block with more open fds than it started with."""
    before = open_fds(pid)
    yield
    deadline = time.monotonic() + settle
    while open_fds(pid) > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_fds(pid) <= before, f"fd leak: {before} -> {open_fds(pid)}"


def stop_process(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` s: a server a test started is gone when the test ends."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Gunicorn:
    """A real gunicorn serving the project on a free port of a loopback address (``host``: 127.0.0.x)."""

    def __init__(self, env: dict[str, str], workers: int = 1, threads: int = 8, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port()
        self.url = f"http://{host}:{self.port}"
        self.log = open(env.get("_LOGFILE", os.devnull), "ab")  # noqa: SIM115
        full_env = {
            **os.environ,
            "DJANGO_ALLOWED_HOSTS": f"{host},localhost",
            "GUNICORN_BIND": f"{host}:{self.port}",
            "GUNICORN_WORKERS": str(workers),
            "GUNICORN_THREADS": str(threads),
            "GUNICORN_ACCESSLOG": "",
            **env,
        }
        full_env.pop("_LOGFILE", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "mediasite/gunicorn.conf.py", "mediasite.wsgi"],
            cwd=PROJECT,
            env=full_env,
            stdout=self.log,
            stderr=self.log,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("gunicorn exited during start-up")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    if self.worker_pids():
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("gunicorn did not start")

    def worker_pids(self) -> list[int]:
        return [pid for pid in children(self.process.pid) if _cmdline(pid).find("gunicorn") >= 0]

    def stop(self) -> None:
        stop_process(self.process, timeout=15)
        self.log.close()


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


@pytest.fixture
def gunicorn_factory(tmp_path: Path) -> Iterator:
    started: list[Gunicorn] = []

    def start(env: dict[str, str] | None = None, **kwargs) -> Gunicorn:
        env = {
            "_LOGFILE": str(tmp_path / f"gunicorn-{len(started)}.log"),
            "TRANSFORMS_CACHE_DIR": str(tmp_path / "cache"),
            **(env or {}),
        }
        server = Gunicorn(env, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def start_test_views(gunicorn_factory, tmp_path: Path, workers: int = 1, threads: int = 8, **env: str) -> Gunicorn:
    """gunicorn serving the test-only pipe views (``tests.splice_urls``) over <tmp>/media, logging at DEBUG."""
    return gunicorn_factory(
        {"MEDIA_ROOT": str(tmp_path / "media"), "DJANGO_SETTINGS_MODULE": "tests.splice_settings", "LOG_LEVEL": "DEBUG",
         **env},
        workers=workers, threads=threads,
    )


def log_text(tmp_path: Path) -> str:
    """Everything the gunicorns of this test logged (``gunicorn_factory`` writes <tmp>/gunicorn-N.log)."""
    return "\n".join(p.read_text(errors="replace") for p in sorted(tmp_path.glob("gunicorn-*.log")))


@pytest.fixture
def tool_children():
    """Assert that a block leaves this process with no new child processes (no zombies).

    Children that existed before the block (session fixtures: redis-server, Chromium) are not its doing.
    """

    @contextmanager
    def check() -> Iterator[None]:
        before = set(children(os.getpid()))

        def new() -> list[int]:
            return [pid for pid in children(os.getpid()) if pid not in before]

        yield
        deadline = time.monotonic() + 3
        while new() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert new() == [], f"left-over children: {new()}"

    return check


class RedisServer:
    """A private redis-server on a free port.

    With ``appendonly`` it keeps an append-only file in ``workdir`` (as ``mediasite/bin/run``'s
    does), so ``restart()`` brings the data back; without it, or with ``restart(wipe=True)``,
    it comes back empty, like a Redis restarted without persistence. Same port either way.
    """

    def __init__(self, workdir: Path, appendonly: bool = False) -> None:
        self.workdir = workdir
        self.appendonly = appendonly
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if self.appendonly else "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """SIGTERM (Redis writes its append-only file and exits), reaped."""
        if self.process is not None:
            stop_process(self.process, 5)
            self.process = None

    def restart(self, down_for: float = 0.0, wipe: bool = False) -> None:
        """Stop, stay down ``down_for`` seconds, start again; ``wipe`` drops what was kept on disk."""
        self.stop()
        if wipe:
            import shutil

            shutil.rmtree(self.workdir / "appendonlydir", ignore_errors=True)
        time.sleep(down_for)
        self.start()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    """One redis-server for the session; tests that use it get an empty db (see ``redis_url``)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer, settings) -> Iterator[str]:
    """The private Redis, flushed before and after the test, wired into the Django cache."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    settings.REDIS_URL = redis_server.url
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_server.url}
    }
    yield redis_server.url
    client.flushall()
    client.close()


@pytest.fixture
def sources(media_root: Path) -> Path:
    """The render tests' media: a short clip with sound, a photo, a tone (tests/render_helpers.py)."""
    from tests.render_helpers import make_sources

    make_sources(media_root)
    return media_root


@pytest.fixture
def rq_redis(redis_url: str, settings) -> str:
    """The private Redis for the render queue too (django-rq would keep a stale connection per process)."""
    from tests.render_helpers import TOKEN

    settings.RQ_QUEUES = {name: {"URL": redis_url} for name in ("default", settings.RENDER_QUEUE)}
    settings.RENDER_API_TOKEN = TOKEN
    return redis_url


CAMERA_ENV = {
    "CAMERAS_IDLE_TIMEOUT": "1",
    "CAMERAS_RESTART_BACKOFF": "0.5",
    "CAMERAS_RESTART_BACKOFF_MAX": "2",
    "CAMERAS_FIRST_FRAME_TIMEOUT": "15",
}


@pytest.fixture
def cameras(gunicorn_factory, redis_url, tmp_path):
    """Start gunicorn with the given CAMERAS; returns (server, redis client, media root)."""
    root = tmp_path / "media"
    root.mkdir(exist_ok=True)
    import redis

    client = redis.Redis.from_url(redis_url)

    def start(spec: str, workers: int = 1, threads: int = 16, **env: str):
        from tests.camera_helpers import ffmpegs

        server = gunicorn_factory(
            {"REDIS_URL": redis_url, "MEDIA_ROOT": str(root), "CAMERAS": spec, **CAMERA_ENV, **env},
            workers=workers, threads=threads,
        )
        # each worker probes its engines as it loads the app (``ffmpeg -version``...): not a camera's ffmpeg
        wait_for(lambda: len(server.worker_pids()) == workers and not ffmpegs(server))
        return server

    start.root = root
    start.redis = client
    start.redis_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    yield start
    client.close()


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator:
    """Debian's headless Chromium driven by Playwright (no browser download needed)."""
    import shutil

    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.fail("chromium is not installed: run mediasite/bin/install --test")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser) -> Iterator:
    context = browser.new_context()
    yield context.new_page()
    context.close()


def pytest_sessionfinish(session, exitstatus) -> None:
    """Remove the run's temporary metrics folder (tests/settings.py made it)."""
    import shutil
    import tempfile

    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if os.path.basename(folder).startswith("mediasite-test-metrics-") and folder.startswith(tempfile.gettempdir()):
        shutil.rmtree(folder, ignore_errors=True)
