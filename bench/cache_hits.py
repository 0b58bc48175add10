"""Cached thumbnail hits: mediasite under gunicorn vs nginx serving the same bytes as a static file.

    flock /tmp/mediasite-bench.lock .venv/bin/python -m bench.cache_hits [--seconds 8] [--runs 3]

Needs Debian's nginx for the comparison only (``apt-get install nginx-light``; it is not
part of the product install). Both servers get a fresh temp folder and a free loopback
port; nginx runs with a throw-away config (``daemon off``, sendfile on, access log off),
gunicorn with the repo's config (``mediasite/gunicorn.conf.py``: the splice worker,
one worker per core, access log off), twice: as shipped (hits answered again from the
worker's event loop, ``streaming.replay``) and with ``STREAMING_REPLAY_BYTES=0`` (every hit
goes through Django and sendfile), and the shipped gunicorn behind nginx running the shipped
site file (``deploy/nginx/mediasite.conf``, through ``mediasite.nginx``: keepalive HTTP/1.1
upstream, so replays still answer). The thumbnail is rendered once, then ``wrk`` (2 threads,
32 connections) asks each server for it; medians of --runs, interleaved. Server CPU per
request is the user+system time of the server's processes (from /proc) over the run,
divided by the requests wrk counted.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import media
from bench.procfs import cpu_seconds, descendants, free_port
from bench.zerocopy import PROJECT
from mediasite import nginx as nginx_site

NGINX_CONF = """
daemon off;
worker_processes {workers};
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    types {{ image/jpeg jpg; }}
    client_body_temp_path {root}/tmp;
    proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp;
    uwsgi_temp_path {root}/tmp;
    scgi_temp_path {root}/tmp;
    server {{
        listen 127.0.0.1:{port};
        root {root}/static;
        location / {{ }}
    }}
}}
"""


def wrk(url: str, seconds: int, servers: subprocess.Popen | list[subprocess.Popen]) -> tuple[float, float]:
    """Requests/s, and the servers' CPU microseconds per request, for one run."""
    servers = servers if isinstance(servers, list) else [servers]
    pids = [pid for server in servers for pid in (server.pid, *descendants(server.pid))]
    before = cpu_seconds(pids)
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", url], check=True, capture_output=True,
                         text=True).stdout
    used = cpu_seconds(pids) - before
    if "Non-2xx" in out:
        raise RuntimeError(f"errors from {url}:\n{out}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), 1e6 * used / max(requests, 1)


def wait_for(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if subprocess.run(["curl", "-s", "-f", "-o", "/dev/null", url]).returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def start_gunicorn(app: str, env: dict[str, str], port: int) -> subprocess.Popen:
    """The repo's gunicorn config (``mediasite/gunicorn.conf.py``) serving ``app`` on ``port``."""
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "mediasite/gunicorn.conf.py", app],
        cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}"},
    )


def make_root() -> Path:
    """A fresh folder nginx may read: tmp/, static/, and media/ holding the 1920x1080 source photo."""
    root = Path(tempfile.mkdtemp(prefix="mediasite-bench-"))
    root.chmod(0o755)
    (root / "tmp").mkdir()
    (root / "static").mkdir()
    media.save(media.photo(1920, 1080), root / "media" / "photo.jpg", quality=90)
    return root


COUNTING = """
import timeit
from streaming.replay import Replay
from streaming.replay_loop import count_replay
entry = Replay(b"", b"", b"", b"", b"x" * 3359, None, "/x", (0, 0, 0, 0), 0.0, kind="image")
rounds = 200_000
print(min(timeit.repeat(lambda: count_replay(entry, 200, with_body=True), number=rounds, repeat=5)) / rounds)
"""


def replay_counting_micros() -> float:
    """Microseconds one replay spends in /metrics counting (``replay_loop.count_replay``), in a process of its own."""
    folder = tempfile.mkdtemp(prefix="mediasite-bench-metrics-")
    try:
        out = subprocess.run([sys.executable, "-c", COUNTING], cwd=PROJECT, check=True, capture_output=True,
                             text=True, env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": folder}).stdout
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 1e6 * float(out.split()[-1])


def report(runs: dict[str, list[tuple[float, float]]], body: bytes, seconds: int, cores: int) -> None:
    """The Markdown table of docs/benchmarks.md: medians of requests/s and of server CPU per request."""
    rates = {name: statistics.median(rate for rate, _ in results) for name, results in runs.items()}
    nginx_rate = next(rate for name, rate in rates.items() if name.startswith("nginx"))
    count = len(next(iter(runs.values())))
    print(f"\nCached 300x200 thumbnail ({len(body)} bytes), wrk -t2 -c32 -d{seconds}s, "
          f"median of {count} runs, {cores} cores shared by client and server\n")
    print("| server | requests/s | % of nginx | server CPU µs per request |")
    print("|---|---|---|---|")
    for name, results in runs.items():
        cpu = statistics.median(micros for _, micros in results)
        print(f"| {name} | {rates[name]:.0f} | {100 * rates[name] / nginx_rate:.0f}% | {cpu:.0f} |")


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        sys.exit("nginx is needed for this comparison: apt-get install nginx-light")
    root = make_root()
    cores = os.cpu_count() or 1
    gunicorn_port, django_port, nginx_port, floor_port, proxy_port = (free_port() for _ in range(5))
    env = {**os.environ, "MEDIA_ROOT": str(root / "media"), "TRANSFORMS_CACHE_DIR": str(root / "cache"),
           "GUNICORN_WORKERS": str(cores), "GUNICORN_ACCESSLOG": "", "GUNICORN_LOGLEVEL": "warning",
           "LOG_LEVEL": "WARNING"}
    gunicorn = start_gunicorn("mediasite.wsgi", env, gunicorn_port)
    through_django = start_gunicorn("mediasite.wsgi", {**env, "STREAMING_REPLAY_BYTES": "0"}, django_port)
    (root / "nginx.conf").write_text(NGINX_CONF.format(workers=cores, root=root, port=nginx_port))
    server = subprocess.Popen([nginx, "-p", str(root), "-c", str(root / "nginx.conf")])
    proxy_conf = nginx_site.standalone(root / "proxy", gunicorn_port, proxy_port, access_log=False)
    proxy = subprocess.Popen([nginx, "-p", str(root / "proxy"), "-c", str(proxy_conf)])
    floor = None
    try:
        thumb = f"http://127.0.0.1:{gunicorn_port}/photo.jpg?size=300x200&fit=cover"
        wait_for(thumb)  # renders it once: every request after this is a cache hit
        thumb_via_django = f"http://127.0.0.1:{django_port}/photo.jpg?size=300x200&fit=cover"
        wait_for(thumb_via_django)
        entry = next(p for p in (root / "cache").rglob("*") if p.is_file() and "." not in p.name)
        body = entry.read_bytes().split(b"\n", 1)[1]
        (root / "static" / "thumb.jpg").write_bytes(body)
        static = f"http://127.0.0.1:{nginx_port}/thumb.jpg"
        wait_for(static)
        floor = start_gunicorn("bench.static_wsgi", {**env, "BENCH_STATIC_FILE": str(root / "static" / "thumb.jpg")},
                               floor_port)
        bare = f"http://127.0.0.1:{floor_port}/thumb.jpg"
        wait_for(bare)
        thumb_via_nginx = f"http://127.0.0.1:{proxy_port}/photo.jpg?size=300x200&fit=cover"
        wait_for(thumb_via_nginx)
        for url in (thumb, thumb_via_django, thumb_via_nginx):
            served = subprocess.run(["curl", "-s", url], capture_output=True, check=True).stdout
            assert served == body, f"{url} did not serve the cached bytes"
        rows = {
            f"mediasite cache hit, as shipped (replayed by the worker, {cores} workers)": (thumb, gunicorn),
            "mediasite cache hit, replays off (Django + sendfile)": (thumb_via_django, through_django),
            "mediasite cache hit through nginx with the shipped config (CPU: nginx + gunicorn)":
                (thumb_via_nginx, [proxy, gunicorn]),
            f"nginx static file ({cores} workers, sendfile)": (static, server),
            "reference: gunicorn, same config, a 5-line WSGI app answering from memory": (bare, floor),
        }
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in rows}
        for _ in range(args.runs):
            for name, (url, process) in rows.items():
                runs[name].append(wrk(url, args.seconds, process))
        report(runs, body, args.seconds, cores)
        replay_cpu = statistics.median(micros for _, micros in next(iter(runs.values())))
        counting = replay_counting_micros()
        print(f"\nCounting a replay for /metrics (streaming.metrics.ReplayTally): {counting:.2f} µs, "
              f"{100 * counting / replay_cpu:.1f}% of a replayed hit's server CPU")
    finally:
        for process in (floor, server, proxy, gunicorn, through_django):
            if process is not None:
                process.terminate()
                process.wait(timeout=20)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
