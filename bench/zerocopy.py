"""Streaming a subprocess pipe through gunicorn on loopback: splice vs copying, and the ceiling.

    flock /tmp/mediasite-bench.lock .venv/bin/python -m bench.zerocopy [--gib 2] [--runs 3]

One run measures, side by side:
  (a) splice    PipeResponse under the splice worker (STREAMING_SPLICE=auto)
  (b) copy 1MiB PipeResponse with splice off: gunicorn's file_wrapper loop reading 1 MiB blocks
  (c) django    Django's FileResponse over the same pipe (4 KiB blocks) through wsgi.file_wrapper
  ceiling       a minimal script splicing the same kind of pipe straight into the socket
The body is ``head -c N /dev/zero``; the client is ``curl -o /dev/null``. Reported: GB/s
(decimal) and the worker's CPU-seconds per GiB (utime+stime of the one worker process,
from /proc), medians of --runs. Then 4 clients rate-limited to 100 MB/s each: the
worker's CPU as % of one core and the rate actually delivered.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.procfs import cpu_seconds, free_port

PROJECT = Path(__file__).resolve().parents[1]
GIB = 1 << 30


class Server:
    def __init__(self, splice_mode: str) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.app_settings",
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": "1",
            "GUNICORN_THREADS": "8",
            "GUNICORN_ACCESSLOG": "",
            "GUNICORN_LOGLEVEL": "warning",
            "LOG_LEVEL": "WARNING",
            "STREAMING_SPLICE": splice_mode,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "mediasite/gunicorn.conf.py", "mediasite.wsgi"],
            cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            workers = children_of(self.process.pid)
            if workers:
                try:
                    fetch(f"http://127.0.0.1:{self.port}/_bench/pipe/10")
                    self.worker = workers[0]
                    return
                except subprocess.CalledProcessError:
                    pass
            time.sleep(0.1)
        raise RuntimeError("gunicorn did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            return [int(child) for child in listing.read().split()]
    except OSError:
        return []


def fetch(url: str, limit: str | None = None) -> tuple[int, float]:
    argv = ["curl", "-s", "-f", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", url]
    if limit:
        argv[1:1] = ["--limit-rate", limit]
    size, seconds = subprocess.run(argv, check=True, capture_output=True, text=True).stdout.split()
    return int(size), float(seconds)


def measure(server: Server, url: str, size: int) -> tuple[float, float]:
    """(GB/s, worker CPU-s per GiB) for one transfer."""
    before = cpu_seconds([server.worker])
    got, seconds = fetch(url)
    used = cpu_seconds([server.worker]) - before
    if got != size:
        raise RuntimeError(f"{url}: got {got} bytes, expected {size}")
    return size / seconds / 1e9, used / (size / GIB)


def ceiling_server(port: int, size: int) -> None:
    """Accept one connection, answer with a bare HTTP/1.0 header, splice the pipe in, report CPU."""
    listener = socket.create_server(("127.0.0.1", port))
    print("ready", flush=True)
    conn, _ = listener.accept()
    conn.recv(65536)
    start = time.process_time()
    tool = subprocess.Popen(["head", "-c", str(size), "/dev/zero"], stdout=subprocess.PIPE)
    fd = tool.stdout.fileno()
    fcntl.fcntl(fd, 1031, 1 << 20)  # F_SETPIPE_SZ, as streaming.pipeline does
    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
    while os.splice(fd, conn.fileno(), 1 << 20, flags=1 | 4):
        pass
    conn.close()
    tool.wait()
    print(f"{time.process_time() - start}", flush=True)


def measure_ceiling(size: int) -> tuple[float, float]:
    port = free_port()
    script = subprocess.Popen(
        [sys.executable, "-m", "bench.zerocopy", "--ceiling-server", str(port), str(size)],
        cwd=PROJECT, stdout=subprocess.PIPE, text=True,
    )
    assert script.stdout.readline().strip() == "ready"
    got, seconds = fetch(f"http://127.0.0.1:{port}/")
    used = float(script.stdout.readline())
    script.wait()
    if got != size:
        raise RuntimeError(f"ceiling: got {got} bytes")
    return size / seconds / 1e9, used / (size / GIB)


def rate_limited(server: Server, path: str, clients: int, each: int) -> tuple[float, float]:
    """(% of one core used by the worker, MB/s delivered in total) for ``clients`` x 100 MB/s."""
    url = f"http://127.0.0.1:{server.port}{path}{each}"
    before = cpu_seconds([server.worker])
    started = time.monotonic()
    argv = ["curl", "-s", "-f", "--limit-rate", "100M", "-o", "/dev/null", url]
    procs = [subprocess.Popen(argv) for _ in range(clients)]
    for proc in procs:
        proc.wait()
    wall = time.monotonic() - started
    used = cpu_seconds([server.worker]) - before
    return 100 * used / wall, clients * each / wall / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate-mb", type=int, default=400, help="MB each rate-limited client fetches")
    parser.add_argument("--ceiling-server", nargs=2, type=int, metavar=("PORT", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ceiling_server:
        ceiling_server(*args.ceiling_server)
        return
    size = int(args.gib * GIB)
    splice_server, copy_server = Server("auto"), Server("off")
    try:
        variants = {
            "(a) splice (PipeResponse, splice worker)": lambda: measure(
                splice_server, f"http://127.0.0.1:{splice_server.port}/_bench/pipe/{size}", size),
            "(b) 1 MiB copy loop (PipeResponse, splice off)": lambda: measure(
                copy_server, f"http://127.0.0.1:{copy_server.port}/_bench/pipe/{size}", size),
            "(c) Django FileResponse default (4 KiB, file_wrapper)": lambda: measure(
                copy_server, f"http://127.0.0.1:{copy_server.port}/_bench/django/{size}", size),
            "ceiling: minimal script splicing pipe -> socket": lambda: measure_ceiling(size),
        }
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        for _ in range(args.runs):  # interleaved, so drift in machine load hits every variant alike
            for name, run in variants.items():
                results[name].append(run())
        ceiling = statistics.median(r[0] for r in results["ceiling: minimal script splicing pipe -> socket"])
        print(f"\n{args.gib:g} GiB from `head -c N /dev/zero` through gunicorn on loopback, "
              f"median of {args.runs} runs\n")
        print("| body path | GB/s | % of ceiling | worker CPU-s per GiB |")
        print("|---|---|---|---|")
        for name, values in results.items():
            rate = statistics.median(v[0] for v in values)
            cpu = statistics.median(v[1] for v in values)
            cpu_text = f"{cpu:.2f}" + (" (script's own CPU)" if name.startswith("ceiling") else "")
            print(f"| {name} | {rate:.2f} | {100 * rate / ceiling:.0f}% | {cpu_text} |")
        each = args.rate_mb * 1_000_000
        print(f"\n4 clients x 100 MB/s (curl --limit-rate), {args.rate_mb} MB each\n")
        print("| body path | worker % of one core | MB/s delivered (of 400) |")
        print("|---|---|---|")
        for name, server, path in (
            ("(a) splice", splice_server, "/_bench/pipe/"),
            ("(b) 1 MiB copy loop", copy_server, "/_bench/pipe/"),
            ("(c) Django FileResponse default", copy_server, "/_bench/django/"),
        ):
            share, delivered = rate_limited(server, path, 4, each)
            print(f"| {name} | {share:.0f}% | {delivered:.0f} |")
    finally:
        splice_server.stop()
        copy_server.stop()


if __name__ == "__main__":
    main()
