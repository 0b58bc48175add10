"""Benchmark: MJPEG fan-out of one emulated camera to many viewers, next to a minimal reference.

    flock /tmp/mediasite-bench.lock .venv/bin/python bench/cameras.py [--runs 3] [--seconds 8]
    flock /tmp/mediasite-bench.lock .venv/bin/python bench/cameras.py --viewers 500,1000,2000 --runs 1 \\
        --seconds 30 --clients 2

Starts a private redis-server and gunicorn (mediasite/gunicorn.conf.py, GUNICORN_WORKERS
workers) on free loopback ports. The reference is bench/fanout_reference.py: one process,
the same emulated camera (drawing and encoding included), the same framing, one epoll
thread. For each viewer count the runs alternate, service then reference, so both see the
same machine. Client processes (``--clients``) open the streams on raw sockets (one
selector each, no per-viewer threads), wait for every viewer's first frame, then measure
for ``--seconds``:

    CPU          user+system time of the server's processes (the gunicorn master and workers,
                 the producer thread included; or the reference process) per wall second,
                 in % of one core; Redis separately
    fps          frames each viewer received per second: median, 5th percentile, minimum
    lag          arrival of a frame's last byte minus its capture time (X-Frame-Time),
                 p50 and p99 over all frames of all viewers
    threads      the workers' thread counts with no viewer and at the end of the run

Each row is the median of ``--runs`` runs. Targets (issue 14): 200 viewers at 15 fps at most
1.5x the reference and 10% of a core, 50 viewers at most 6%; 2000 viewers over two workers
at >= 14 fps (5th percentile), lag p99 under 100 ms, thread counts flat.
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
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from bench.procfs import USER, cpu_seconds, descendants, free_port  # noqa: E402


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
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
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

    deadline = time.monotonic() + 60
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
    out.send(([v.frames / elapsed for v in group], [lag for v in group for lag in v.lags]))
    for viewer in group:
        viewer.sock.close()


def threads_of(pids: list[int]) -> list[int]:
    counts = []
    for pid in pids:
        try:
            counts.append(len(os.listdir(f"/proc/{pid}/task")))
        except OSError:
            continue
    return counts


def measure(server_pids, workers, redis_pid: int, port: int, viewers: int, seconds: float, clients: int) -> dict:
    """One run: ``viewers`` split over ``clients`` processes; CPU of ``server_pids()`` while they watch."""
    idle_threads = threads_of(workers())
    pipes, processes = [], []
    for index in range(clients):
        share = viewers // clients + (1 if index < viewers % clients else 0)
        parent, child = multiprocessing.Pipe()
        process = multiprocessing.Process(target=client, args=(port, share, seconds, child))
        process.start()
        pipes.append(parent)
        processes.append(process)
    for parent in pipes:
        assert parent.poll(180), "viewers did not start"
        parent.recv()
    pids = server_pids()
    cpu0, user0, redis0 = cpu_seconds(pids), cpu_seconds(pids, (USER,)), cpu_seconds([redis_pid])
    t0 = time.monotonic()
    for parent in pipes:
        parent.send("go")
    rates, lags = [], []
    for parent in pipes:
        got_rates, got_lags = parent.recv()
        rates += got_rates
        lags += got_lags
    wall = time.monotonic() - t0
    busy_threads = threads_of(workers())
    cpu = (cpu_seconds(pids) - cpu0) / wall * 100
    user = (cpu_seconds(pids, (USER,)) - user0) / wall * 100
    redis_cpu = (cpu_seconds([redis_pid]) - redis0) / wall * 100
    for process in processes:
        process.join()
    lags.sort()
    rates.sort()
    return {
        "cpu": cpu, "user": user, "redis": redis_cpu,
        "fps_median": statistics.median(rates), "fps_p5": rates[len(rates) // 20], "fps_min": rates[0],
        "lag_p50": lags[len(lags) // 2] * 1000, "lag_p99": lags[int(len(lags) * 0.99)] * 1000,
        "threads": f"{'+'.join(map(str, idle_threads))} -> {'+'.join(map(str, busy_threads))}",
    }


def start_reference(size: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(PROJECT / "bench" / "fanout_reference.py"), str(port), size, "15"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    time.sleep(1.0)  # its first frames exist
    return process, port


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def median_row(runs: list[dict]) -> dict:
    row = {key: statistics.median(run[key] for run in runs) for key in runs[0] if key != "threads"}
    row["threads"] = runs[-1]["threads"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewers", default="1,10,50,200")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--clients", type=int, default=1, help="client processes the viewers are split over")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--warm", action="store_true",
                        help="keep one viewer on the service throughout, so crowds join a running camera")
    args = parser.parse_args()

    redis_port, http_port = free_port(), free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL)
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
           "CAMERAS": f"bench=emulated?size={args.size}&fps=15",
           "GUNICORN_BIND": f"127.0.0.1:{http_port}", "GUNICORN_WORKERS": str(args.workers),
           "GUNICORN_ACCESSLOG": "", "GUNICORN_LOGLEVEL": "warning", "CAMERAS_IDLE_TIMEOUT": "1",
           "CAMERAS_MAX_VIEWERS": "10000", "CAMERAS_WORKER_STREAMS": "4000", "DJANGO_ALLOWED_HOSTS": "127.0.0.1"}
    gunicorn = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "mediasite/gunicorn.conf.py",
                                 "mediasite.wsgi"], cwd=PROJECT, env=env)
    service = (lambda: [gunicorn.pid, *descendants(gunicorn.pid)], lambda: descendants(gunicorn.pid))
    results = {}
    standing = None
    try:
        time.sleep(3)
        standing = start_standing_viewer(http_port) if args.warm else None
        for count in [int(n) for n in args.viewers.split(",")]:
            ours, theirs = [], []
            for _ in range(args.runs):
                ours.append(measure(*service, redis.pid, http_port, count, args.seconds, args.clients))
                time.sleep(1.5)  # the service's producer stops (CAMERAS_IDLE_TIMEOUT) before the reference runs
                # (unless --warm keeps a viewer on it: then it runs on, a little more load for the reference)
                if not args.no_reference:
                    reference, port = start_reference(args.size)
                    try:
                        theirs.append(measure(lambda r=reference: [r.pid], lambda: [], redis.pid, port, count,
                                              args.seconds, args.clients))
                    finally:
                        stop(reference)
            results[count] = (median_row(ours), median_row(theirs) if theirs else None)
            print(f"  {count} viewers: {results[count]}", file=sys.stderr, flush=True)
    finally:
        if standing is not None:
            standing.terminate()
        stop(gunicorn)
        stop(redis)
    report(args, results)


def watch_forever(port: int) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"GET /cameras/bench/stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    while sock.recv(1 << 20):
        pass


def start_standing_viewer(port: int) -> multiprocessing.Process:
    """One viewer that watches the whole time (its own process), so the camera never goes idle."""
    process = multiprocessing.Process(target=watch_forever, args=(port,), daemon=True)
    process.start()
    time.sleep(2)
    return process


def report(args, results: dict) -> None:
    print(f"one emulated camera, {args.size} at 15 fps; {args.workers} workers "
          f"(mediasite/gunicorn.conf.py) vs the one-thread epoll reference; medians of {args.runs} runs "
          f"of {args.seconds:g} s, runs interleaved")
    print("| viewers | service CPU (% of a core) | of which user | reference CPU | ratio | Redis CPU "
          "| fps median | fps p5 | fps min | lag p50 (ms) | lag p99 (ms) | reference fps p5 | worker threads |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for count, (row, ref) in results.items():
        ref_cpu = f"{ref['cpu']:.1f}" if ref else "-"
        ratio = f"{row['cpu'] / ref['cpu']:.2f}" if ref and ref["cpu"] else "-"
        ref_fps = f"{ref['fps_p5']:.2f}" if ref else "-"
        print(f"| {count} | {row['cpu']:.1f} | {row['user']:.1f} | {ref_cpu} | {ratio} | {row['redis']:.1f} "
              f"| {row['fps_median']:.2f} | {row['fps_p5']:.2f} | {row['fps_min']:.2f} | {row['lag_p50']:.1f} "
              f"| {row['lag_p99']:.1f} | {ref_fps} | {row['threads']} |")


if __name__ == "__main__":
    main()
