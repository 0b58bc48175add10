"""Benchmark: MJPEG fan-out of one 640x480 15 fps emulated camera to 1, 10, 50 and 200 viewers.

    flock /tmp/mediasite-bench.lock .venv/bin/python bench/cameras.py [--runs 3] [--seconds 8]

Starts a private redis-server and gunicorn (mediasite/gunicorn.conf.py: gthread,
GUNICORN_WORKERS workers, 256 threads each) on free loopback ports. For each
viewer count a separate client process opens the streams on raw sockets (one
selector, no per-viewer threads, so the client stays cheap), waits for every
viewer's first frame, then measures for ``--seconds``:

    server CPU   user+system time of the gunicorn master and workers (the producer
                 thread included: it draws and encodes every frame) per wall second,
                 in % of one core; Redis separately
    fps          frames each viewer received per second (median and minimum)
    lag          arrival of a frame's last byte minus its capture time (X-Frame-Time),
                 p50 and p99 over all frames of all viewers

Each row is the median of ``--runs`` runs. Targets (issue 6): 50 viewers at 15 fps
under 10% of a core with p99 lag under 20 ms; 200 viewers under 20%, all >= 14 fps.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import selectors
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from bench.procfs import USER, cpu_seconds, descendants, free_port  # noqa: E402

CAMERA = "bench=emulated?size=640x480&fps=15"


class Viewer:
    """One raw-socket viewer: de-chunks the HTTP body just enough to see each part's timestamp."""

    __slots__ = ("sock", "head", "skip", "in_body", "captured", "frames", "lags", "measuring")

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.sendall(b"GET /cameras/bench/stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        self.sock.setblocking(False)
        self.head = b""
        self.skip = 0
        self.in_body = False
        self.captured = 0.0
        self.frames = 0
        self.lags: list[float] = []
        self.measuring = False

    def feed(self, data: bytes, now: float) -> None:
        while data:
            if self.skip:
                if len(data) < self.skip:
                    self.skip -= len(data)
                    return
                data = data[self.skip:]
                self.skip = 0
                self._frame_done(now)
                continue
            self.head += data
            data = b""
            if not self.in_body:
                end = self.head.find(b"\r\n\r\n")
                if end < 0:
                    return
                if not self.head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(self.head[:200].decode("latin-1"))
                self.head = self.head[end + 4:]
                self.in_body = True
            line_end = self.head.find(b"\r\n")
            part_end = self.head.find(b"\r\n\r\n", line_end + 2)
            if line_end < 0 or part_end < 0:
                return
            size = int(self.head[:line_end], 16)
            if size == 0:
                raise RuntimeError("stream ended")
            stamp = self.head.find(b"X-Frame-Time: ", line_end)
            self.captured = float(self.head[stamp + 14:self.head.find(b"\r\n", stamp)])
            consumed = len(self.head) - (line_end + 2)
            remaining = size + 2 - consumed
            if remaining > 0:
                self.skip = remaining
                self.head = b""
                return
            data = self.head[line_end + 2 + size + 2:]
            self.head = b""
            self._frame_done(now)

    def _frame_done(self, now: float) -> None:
        if self.measuring:
            self.frames += 1
            self.lags.append(now - self.captured)
        else:
            self.frames = -1 if self.frames == 0 else self.frames  # first frame seen


def client(port: int, viewers: int, seconds: float, out) -> None:
    """Runs in its own process: opens the viewers, waits for all first frames, measures."""
    selector = selectors.DefaultSelector()
    group = []
    for _ in range(viewers):
        viewer = Viewer(port)
        selector.register(viewer.sock, selectors.EVENT_READ, viewer)
        group.append(viewer)
        time.sleep(0.002)
    buffer = bytearray(1 << 18)
    view = memoryview(buffer)

    def pump(until: float) -> None:
        while time.monotonic() < until:
            for key, _ in selector.select(0.1):
                count = key.fileobj.recv_into(buffer)
                if count == 0:
                    raise RuntimeError("server closed a stream")
                key.data.feed(bytes(view[:count]), time.time())

    deadline = time.monotonic() + 30
    while any(v.frames == 0 for v in group) and time.monotonic() < deadline:
        pump(time.monotonic() + 0.2)
    pump(time.monotonic() + 1.0)  # settle
    out.send("ready")
    out.recv()  # the parent has taken its CPU reading
    for viewer in group:
        viewer.frames, viewer.lags, viewer.measuring = 0, [], True
    started = time.monotonic()
    pump(started + seconds)
    elapsed = time.monotonic() - started
    out.send(([v.frames / elapsed for v in group], [lag for v in group for lag in v.lags], elapsed))
    for viewer in group:
        viewer.sock.close()


def measure(server_pids, redis_pid, port: int, viewers: int, seconds: float) -> dict:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=client, args=(port, viewers, seconds, child))
    process.start()
    assert parent.poll(60), "viewers did not start"
    parent.recv()
    pids = server_pids()
    cpu0, user0, redis0 = cpu_seconds(pids), cpu_seconds(pids, (USER,)), cpu_seconds([redis_pid])
    t0 = time.monotonic()
    parent.send("go")
    rates, lags, _ = parent.recv()
    wall = time.monotonic() - t0
    cpu = (cpu_seconds(pids) - cpu0) / wall * 100
    user = (cpu_seconds(pids, (USER,)) - user0) / wall * 100
    redis_cpu = (cpu_seconds([redis_pid]) - redis0) / wall * 100
    process.join()
    lags.sort()
    return {
        "cpu": cpu, "user": user, "redis": redis_cpu,
        "fps_median": statistics.median(rates), "fps_min": min(rates),
        "lag_p50": lags[len(lags) // 2] * 1000, "lag_p99": lags[int(len(lags) * 0.99)] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewers", default="1,10,50,200")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    redis_port, http_port = free_port(), free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL)
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "CAMERAS": CAMERA,
           "GUNICORN_BIND": f"127.0.0.1:{http_port}", "GUNICORN_WORKERS": str(args.workers),
           "GUNICORN_ACCESSLOG": "", "GUNICORN_LOGLEVEL": "warning", "CAMERAS_IDLE_TIMEOUT": "60",
           "CAMERAS_MAX_VIEWERS": "1000",
           "DJANGO_ALLOWED_HOSTS": "127.0.0.1"}
    gunicorn = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "mediasite/gunicorn.conf.py",
                                 "mediasite.wsgi"], cwd=PROJECT, env=env)
    try:
        time.sleep(3)
        results = {}
        for count in [int(n) for n in args.viewers.split(",")]:
            runs = [measure(lambda: [gunicorn.pid, *descendants(gunicorn.pid)], redis.pid, http_port, count,
                            args.seconds) for _ in range(args.runs)]
            results[count] = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            print(f"  {count} viewers: {results[count]}", file=sys.stderr, flush=True)
    finally:
        gunicorn.terminate()
        gunicorn.wait(20)
        redis.terminate()
        redis.wait(10)

    print(f"one emulated camera, 640x480 at 15 fps; {args.workers} gthread workers x 256 threads; "
          f"medians of {args.runs} runs of {args.seconds:g} s")
    print("| viewers | server CPU (% of a core) | of which user | Redis CPU | fps median | fps min "
          "| lag p50 (ms) | lag p99 (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    for count, row in results.items():
        print(f"| {count} | {row['cpu']:.1f} | {row['user']:.1f} | {row['redis']:.1f} | {row['fps_median']:.2f} "
              f"| {row['fps_min']:.2f} | {row['lag_p50']:.1f} | {row['lag_p99']:.1f} |")


if __name__ == "__main__":
    main()
