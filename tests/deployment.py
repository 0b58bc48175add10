"""Pieces of a deployment for tests that run one as its users do: manage.py, rq workers, a Redis to restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from mediasite import nginx as nginx_config
from tests.conftest import PROJECT, children, free_port, stop_process


def manage(env: dict[str, str], *args: str) -> None:
    """``python manage.py ARGS`` in the checkout with ``env`` added; fails the test if it fails."""
    subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT, env={**os.environ, **env}, check=True,
                   stdout=subprocess.DEVNULL, timeout=120)


WORKER_ARGS = ("renders", "--worker-class", "transforms.renders.job.RenderWorker")


def start_rq_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    """A real ``manage.py rqworker`` as the README runs it (forking work horses), logging to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "manage.py", "rqworker", *WORKER_ARGS], cwd=PROJECT,
                                env={**os.environ, **env}, stdout=out, stderr=out)


def stop_rq_worker(process: subprocess.Popen) -> None:
    """Cold shutdown (two SIGINTs), then make sure no work horse outlives it."""
    descendants = children(process.pid)
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGINT)
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


class RestartableRedis:
    """A private redis-server on a fixed free port that a test can stop and start again."""

    def __init__(self, workdir: Path, appendonly: bool = False) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.appendonly = appendonly
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if self.appendonly else "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
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
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, 5)
            self.process = None


NGINX = "/usr/sbin/nginx"


class Nginx:
    """A real nginx running the shipped site file, with only its ports (and temp folders) changed."""

    def __init__(self, workdir: Path, upstream_port: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        conf = nginx_config.standalone(workdir, upstream_port, self.port)
        self.process = subprocess.Popen([NGINX, "-p", str(workdir), "-c", str(conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {(workdir / 'error.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        stop_process(self.process, 5)
