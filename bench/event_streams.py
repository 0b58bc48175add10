"""Benchmark: 100 open render event streams, and how soon a change reaches each of them.

    flock /tmp/mediasite-bench.lock .venv/bin/python bench/event_streams.py [--streams 100] [--changes 20]

A private redis-server, a migrated throwaway SQLite file and gunicorn
(mediasite/gunicorn.conf.py, 2 workers). One render is submitted through the API (no
render worker runs, so it stays queued); ``--streams`` clients follow
``/api/renders/<id>/events`` on raw sockets from one selector. Then this process
publishes ``--changes`` progress snapshots a second apart, exactly as a render worker
does (``transforms.renders.progress.publish`` into the same Redis), and records when
each stream receives the event with that id. Reported: the delay from publish to
arrival (p50, p99, max over every stream and change), the gunicorn CPU while the streams
are open, and the workers' thread counts before and with the streams (``--threads``, 8 by default:
fewer threads than streams, so a thread per stream could not even be).

Target (issue 14): no thread per stream, every event within 0.5 s of the change.
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from bench.procfs import cpu_seconds, descendants, free_port  # noqa: E402
from bench.renders import start_redis  # noqa: E402

TOKEN = "bench-token"


class Stream:
    """One event stream: the arrival time of each event id."""

    def __init__(self, port: int, task: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(f"GET /api/renders/{task}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          f"Authorization: Bearer {TOKEN}\r\n\r\n".encode())
        self.sock.setblocking(False)
        self.buffer = b""
        self.arrivals: dict[int, float] = {}

    def receive(self) -> None:
        data = self.sock.recv(1 << 16)
        if not data:
            raise RuntimeError("a stream ended")
        now = time.time()
        self.buffer += data
        while (start := self.buffer.find(b"id: ")) >= 0 and (end := self.buffer.find(b"\n", start)) >= 0:
            self.arrivals[int(self.buffer[start + 4:end])] = now
            self.buffer = self.buffer[end:]


def threads(pids: list[int]) -> str:
    return "+".join(str(len(os.listdir(f"/proc/{pid}/task"))) for pid in pids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--threads", type=int, default=8, help="GUNICORN_THREADS: fewer than the streams, to show")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="event-streams-"))
    (base / "media").mkdir()
    redis, redis_url = start_redis(base)
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": f"sqlite:///{base / 'db.sqlite3'}",
           "MEDIA_ROOT": str(base / "media"), "RENDER_API_TOKEN": TOKEN, "GUNICORN_BIND": f"127.0.0.1:{port}",
           "GUNICORN_WORKERS": "2", "GUNICORN_THREADS": str(args.threads), "GUNICORN_ACCESSLOG": "",
           "GUNICORN_LOGLEVEL": "warning", "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
           "DJANGO_SETTINGS_MODULE": "mediasite.settings"}
    os.environ.update({key: env[key] for key in ("REDIS_URL", "DATABASE_URL", "MEDIA_ROOT", "DJANGO_SETTINGS_MODULE")})
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=PROJECT, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "mediasite/gunicorn.conf.py",
                               "mediasite.wsgi"], cwd=PROJECT, env=env)
    try:
        time.sleep(3)
        report(args, measure(args, port, server))
    finally:
        server.terminate()
        server.wait(30)
        redis.terminate()


def measure(args, port: int, server: subprocess.Popen) -> dict:
    import django
    import requests

    django.setup()
    from transforms.renders.progress import publish

    answer = requests.post(f"http://127.0.0.1:{port}/api/renders/", json={"size": [320, 180], "clips": [
        {"title": "bench", "duration": 1}]}, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    task = answer.json()["task_id"]
    workers = descendants(server.pid)
    before = threads(workers)
    streams = [Stream(port, task) for _ in range(args.streams)]
    selector = selectors.DefaultSelector()
    for stream in streams:
        selector.register(stream.sock, selectors.EVENT_READ, stream)

    def pump(seconds: float) -> None:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            for key, _ in selector.select(0.05):
                key.data.receive()

    pump(3)
    assert all(stream.arrivals for stream in streams), "a stream got no first event"
    pids = [server.pid, *workers]
    cpu0, t0 = cpu_seconds(pids), time.monotonic()
    published = {}
    for _ in range(args.changes):
        published[publish(task, {"status": "queued"})] = time.time()
        pump(1.0)
    pump(1.0)
    cpu = (cpu_seconds(pids) - cpu0) / (time.monotonic() - t0) * 100
    with_streams = threads(workers)
    delays = sorted(stream.arrivals[seq] - at if seq in stream.arrivals else float("inf")
                    for stream in streams for seq, at in published.items())
    for stream in streams:
        stream.sock.close()
    return {"p50": delays[len(delays) // 2], "p99": delays[int(len(delays) * 0.99)], "max": delays[-1],
            "missed": sum(delay == float("inf") for delay in delays), "cpu": cpu, "before": before,
            "with": with_streams, "count": len(delays)}


def report(args, row: dict) -> None:
    print(f"{args.streams} event streams on one render, {args.changes} changes a second apart; "
          f"2 workers of {args.threads} threads (mediasite/gunicorn.conf.py)")
    print("| streams | events | delay p50 (ms) | delay p99 (ms) | delay max (ms) | missed | gunicorn CPU (% of a core) "
          "| worker threads before -> with the streams |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {args.streams} | {row['count']} | {row['p50'] * 1000:.0f} | {row['p99'] * 1000:.0f} "
          f"| {row['max'] * 1000:.0f} | {row['missed']} | {row['cpu']:.1f} | {row['before']} -> {row['with']} |")


if __name__ == "__main__":
    main()
