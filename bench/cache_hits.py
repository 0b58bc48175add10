"""Cached thumbnail hits: mediasite under gunicorn vs nginx serving the same bytes as a static file.

    flock /tmp/mediasite-bench.lock .venv/bin/python -m bench.cache_hits [--seconds 8] [--runs 3]

Needs Debian's nginx for the comparison only (``apt-get install nginx-light``; it is not
part of the product install). Both servers get a fresh temp folder and a free loopback
port; nginx runs with a throw-away config (``daemon off``, sendfile on, access log off),
gunicorn with the repo's config (``mediasite/gunicorn.conf.py``: the splice worker,
one worker per core, access log off). The thumbnail is rendered once, then ``wrk``
(2 threads, 32 connections) asks both for it; medians of --runs, interleaved.
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

from bench.procfs import free_port
from bench.zerocopy import PROJECT

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


def wrk(url: str, seconds: int) -> float:
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", url], check=True, capture_output=True,
                         text=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"errors from {url}:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def wait_for(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if subprocess.run(["curl", "-s", "-f", "-o", "/dev/null", url]).returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        sys.exit("nginx is needed for this comparison: apt-get install nginx-light")
    root = Path(tempfile.mkdtemp(prefix="mediasite-bench-"))
    root.chmod(0o755)
    (root / "tmp").mkdir()
    (root / "static").mkdir()
    media = root / "media"
    media.mkdir()
    sys.path.insert(0, str(PROJECT))
    from tests import media_factory

    media_factory.save(media_factory.photo(1920, 1080), media / "photo.jpg", quality=90)
    cores = os.cpu_count() or 1
    gunicorn_port, nginx_port = free_port(), free_port()
    env = {
        **os.environ,
        "MEDIA_ROOT": str(media),
        "TRANSFORMS_CACHE_DIR": str(root / "cache"),
        "GUNICORN_BIND": f"127.0.0.1:{gunicorn_port}",
        "GUNICORN_WORKERS": str(cores),
        "GUNICORN_ACCESSLOG": "",
        "GUNICORN_LOGLEVEL": "warning",
        "LOG_LEVEL": "WARNING",
    }
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "mediasite/gunicorn.conf.py", "mediasite.wsgi"],
        cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    (root / "nginx.conf").write_text(NGINX_CONF.format(workers=cores, root=root, port=nginx_port))
    server = subprocess.Popen([nginx, "-p", str(root), "-c", str(root / "nginx.conf")])
    floor = None
    try:
        thumb = f"http://127.0.0.1:{gunicorn_port}/photo.jpg?size=300x200&fit=cover"
        wait_for(thumb)  # renders it once: every request after this is a cache hit
        entry = next(p for p in (root / "cache").rglob("*") if p.is_file() and "." not in p.name)
        body = entry.read_bytes().split(b"\n", 1)[1]
        (root / "static" / "thumb.jpg").write_bytes(body)
        static = f"http://127.0.0.1:{nginx_port}/thumb.jpg"
        wait_for(static)
        floor_port = free_port()
        floor = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "mediasite/gunicorn.conf.py", "bench.static_wsgi"],
            cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**env, "GUNICORN_BIND": f"127.0.0.1:{floor_port}",
                 "BENCH_STATIC_FILE": str(root / "static" / "thumb.jpg")},
        )
        bare = f"http://127.0.0.1:{floor_port}/thumb.jpg"
        wait_for(bare)
        served = subprocess.run(["curl", "-s", thumb], capture_output=True, check=True).stdout
        assert served == body, "gunicorn did not serve the cached bytes"
        ours, theirs, floors = [], [], []
        for _ in range(args.runs):
            ours.append(wrk(thumb, args.seconds))
            theirs.append(wrk(static, args.seconds))
            floors.append(wrk(bare, args.seconds))
        mine, nginx_rate, floor_rate = statistics.median(ours), statistics.median(theirs), statistics.median(floors)
        print(f"\nCached 300x200 thumbnail ({len(body)} bytes), wrk -t2 -c32 -d{args.seconds}s, "
              f"median of {args.runs} runs, {cores} cores shared by client and server\n")
        print("| server | requests/s | % of nginx |")
        print("|---|---|---|")
        share = 100 * mine / nginx_rate
        print(f"| mediasite cache hit (gunicorn, {cores} workers, sendfile) | {mine:.0f} | {share:.0f}% |")
        print(f"| nginx static file ({cores} workers, sendfile) | {nginx_rate:.0f} | 100% |")
        print(f"| reference: gunicorn, same config, a 5-line WSGI app answering from memory | {floor_rate:.0f} | "
              f"{100 * floor_rate / nginx_rate:.0f}% |")
    finally:
        if floor is not None:
            floor.terminate()
            floor.wait(timeout=20)
        server.terminate()
        server.wait(timeout=10)
        gunicorn.terminate()
        gunicorn.wait(timeout=20)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
