"""Benchmark: 1000 connections trickling request heads at a directly exposed service.

    flock /tmp/mediasite-bench.lock .venv/bin/python bench/slow_heads.py [--tricklers 1000] [--requests 300]

gunicorn (mediasite/gunicorn.conf.py, 2 workers) listens on loopback as it would on
0.0.0.0:8000, nothing in front. A separate process keeps ``--tricklers`` connections open,
each sending one byte of a request head every 5 s (a new one replaces each that is closed),
and records how each one ended. Meanwhile this process sends ordinary requests, one after
the other on fresh connections (GET of a small original: accept, head, a thread, Django,
sendfile), first with no tricklers, then with them, and reports their latency.

With ``--stock`` the same runs against gunicorn's own gthread worker (the head read by a
thread, no header timeout) for comparison. Targets (issue 14): normal requests' p99 within
2x of the same without tricklers, every trickling connection closed by the header timeout.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from bench.procfs import free_port  # noqa: E402

TRICKLE_EVERY = 5.0
HEAD = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"s" * 4000  # never finished


def trickle(port: int, count: int, seconds: float, out) -> None:
    """Its own process: ``count`` trickling connections for ``seconds``; reports how each one ended."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    selector = selectors.DefaultSelector()
    opened: dict[socket.socket, list] = {}  # sock -> [opened at, next byte at, answer so far, bytes sent]
    ended = []  # (seconds it lived, first bytes of what the server said)
    stop_at = time.monotonic() + seconds

    def open_one() -> None:
        sock = socket.socket()
        sock.setblocking(False)
        try:
            sock.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        now = time.monotonic()
        opened[sock] = [now, now, b"", 0]
        selector.register(sock, selectors.EVENT_READ)

    for index in range(count):
        open_one()
        if index % 50 == 49:
            time.sleep(0.05)
    out.send("ready")
    while time.monotonic() < stop_at:
        now = time.monotonic()
        for sock, state in opened.items():
            if now >= state[1]:
                state[1] = now + TRICKLE_EVERY
                try:
                    state[3] += sock.send(HEAD[state[3]:state[3] + 1])
                except OSError:
                    pass
        for key, _ in selector.select(0.2):
            sock = key.fileobj
            try:
                data = sock.recv(4096)
            except OSError:
                data = b""
            if data:
                opened[sock][2] += data
                continue
            selector.unregister(sock)
            born, _, said, _ = opened.pop(sock)
            ended.append((time.monotonic() - born, said[:12]))
            sock.close()
            open_one()
    out.send((ended, len(opened)))


def ordinary(port: int, count: int, gap: float) -> list[float]:
    """``count`` GETs of a small original, each on a new connection; their latencies in seconds."""
    latencies = []
    request = b"GET /small.jpg HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    for _ in range(count):
        started = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
                sock.sendall(request)
                while sock.recv(65536):
                    pass
            latencies.append(time.monotonic() - started)
        except OSError:
            latencies.append(float("inf"))  # timed out or refused
        time.sleep(gap)
    return latencies


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def run(args, worker_class: str | None) -> dict:
    media = Path(tempfile.mkdtemp(prefix="slow-heads-"))
    from PIL import Image

    Image.new("RGB", (200, 100), (40, 90, 160)).save(media / "small.jpg", quality=85)
    port = free_port()
    env = {**os.environ, "MEDIA_ROOT": str(media), "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2",
           "GUNICORN_ACCESSLOG": "", "GUNICORN_LOGLEVEL": "warning", "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
           "STREAMING_REPLAY_BYTES": "0"}
    if worker_class:
        env["GUNICORN_WORKER_CLASS"] = worker_class
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "mediasite/gunicorn.conf.py",
                               "mediasite.wsgi"], cwd=PROJECT, env=env)
    try:
        time.sleep(3)
        ordinary(port, 20, 0.01)  # warm up
        alone = ordinary(port, args.requests, args.gap)
        parent, child = multiprocessing.Pipe()
        attack = multiprocessing.Process(target=trickle, args=(port, args.tricklers, args.seconds, child))
        attack.start()
        assert parent.poll(120)
        parent.recv()
        time.sleep(2)
        beside = ordinary(port, args.requests, args.gap)
        ended, still_open = parent.recv()
        attack.join()
    finally:
        server.terminate()
        server.wait(30)
    lifetimes = [life for life, _ in ended]
    return {
        "alone_p50": percentile(alone, 0.5) * 1000, "alone_p99": percentile(alone, 0.99) * 1000,
        "beside_p50": percentile(beside, 0.5) * 1000, "beside_p99": percentile(beside, 0.99) * 1000,
        "failed": sum(latency == float("inf") or latency > 8 for latency in beside),
        "closed": len(ended), "with_408": sum(said.startswith(b"HTTP/1.1 408") for _, said in ended),
        "lifetime": statistics.median(lifetimes) if lifetimes else float("nan"), "open_at_end": still_open,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tricklers", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between two ordinary requests")
    parser.add_argument("--seconds", type=float, default=40.0, help="how long the tricklers keep at it")
    parser.add_argument("--stock", action="store_true", help="also run against gunicorn's own gthread worker")
    args = parser.parse_args()
    rows = [("SpliceThreadWorker (heads on the event loop)", run(args, None))]
    if args.stock:
        rows.append(("gunicorn's gthread (heads read by threads)", run(args, "gthread")))
    print(f"{args.tricklers} connections each sending one byte every {TRICKLE_EVERY:g} s for {args.seconds:g} s; "
          f"{args.requests} ordinary requests (GET of a 200x100 JPEG original, a new connection each) "
          "before and during; 2 workers x 64 threads")
    print("| worker | p50 alone (ms) | p99 alone (ms) | p50 beside (ms) | p99 beside (ms) | failed or > 8 s "
          "| tricklers closed | of them with 408 | median life (s) | still open at the end |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, row in rows:
        print(f"| {name} | {row['alone_p50']:.1f} | {row['alone_p99']:.1f} | {row['beside_p50']:.1f} "
              f"| {row['beside_p99']:.1f} | {row['failed']} | {row['closed']} | {row['with_408']} "
              f"| {row['lifetime']:.1f} | {row['open_at_end']} |")


if __name__ == "__main__":
    main()
