"""Benchmark render jobs: progress reporting overhead, and enqueue -> first progress update.

    flock /tmp/mediasite-bench.lock .venv/bin/python bench/renders.py [--runs 3] [--starts 7]

1. Render time of a 10 s 1280x720 recipe (video clip, zooming still, title card, crossfades,
   music) with the progress logger on (throttled cache writes to a real Redis, cancel-flag
   reads) vs off (MoviePy's silent logger). Runs alternate on/off; medians are printed, and
   the time spent inside the logger itself is measured directly, since on a shared machine
   the run-to-run noise of an 8 s render is larger than the overhead.
2. Time from ``lifecycle.start()`` (row + enqueue) to the first progress snapshot in the cache,
   with a real ``manage.py rqworker`` (RenderWorker: MoviePy imported before the fork) idle
   on the queue. Target: < 1 s.

Everything runs on a private redis-server and a throwaway SQLite file and media folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
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


def start_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(workdir)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return process, f"redis://127.0.0.1:{port}/0"


def make_sources(root: Path) -> None:
    from bench import media as media_factory  # bench makes its own inputs; it does not import tests/

    media_factory.clip(root / "intro.mp4", seconds=4, size="1280x720", fps=24)
    media_factory.save(media_factory.photo(1920, 1080), root / "photo.jpg", quality=90)
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=220:duration=5", "-c:a", "libmp3lame", str(root / "music.mp3")], check=True)


RECIPE = {
    "size": [1280, 720], "fps": 24, "format": "mp4",
    "clips": [
        {"video": "intro.mp4", "start": 0, "end": 4},
        {"image": "photo.jpg", "duration": 3.5, "zoom": 1.1},
        {"title": "Benchmark", "duration": 3.5, "font_size": 64},
    ],
    "crossfade": 0.5,
    "audio": {"source": "music.mp3", "volume": 0.5, "loop": True},
}


def timed_progress_class() -> type:
    from transforms.renders.progress import RenderProgress

    class TimedProgress(RenderProgress):
        """Also adds up the time spent inside the logger (callbacks, cache writes, cancel checks)."""

        inside = 0.0

        def bars_callback(self, *args, **kwargs) -> None:
            began = time.perf_counter()
            try:
                super().bars_callback(*args, **kwargs)
            finally:
                self.inside += time.perf_counter() - began

    return TimedProgress


def render_once(recipe: dict, workdir: Path, progress: bool) -> tuple[float, int, float]:
    from transforms.renders.movie import render_recipe

    workdir.mkdir(parents=True, exist_ok=True)
    logger = timed_progress_class()("bench") if progress else None
    started = time.perf_counter()
    render_recipe(recipe, workdir / "out.mp4", workdir, logger,
                  on_plan=logger.set_plan if logger is not None else None)
    elapsed = time.perf_counter() - started
    shutil.rmtree(workdir)
    if logger is None:
        return elapsed, 0, 0.0
    return elapsed, logger.writes, logger.inside


def time_to_first_progress(starts: int, env: dict[str, str], logs: Path) -> list[float]:
    from django.core.cache import cache

    from transforms.renders import lifecycle
    from transforms.renders.models import RenderJob
    from transforms.renders.progress import read_snapshot

    worker = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker"],  # RenderWorker on the render queue, from the settings
        cwd=PROJECT, env={**os.environ, **env}, stdout=open(logs, "ab"), stderr=subprocess.STDOUT,
    )
    try:
        recipe = {"size": [320, 180], "fps": 12, "clips": [{"title": "go", "duration": 1}]}
        # Warm-up: the worker has registered and rendered once.
        latencies: list[float] = []
        for index in range(starts + 1):
            render = RenderJob.objects.create(recipe=recipe)
            begun = time.perf_counter()
            lifecycle.start(render)
            while True:
                snapshot = read_snapshot(render.pk)
                if snapshot and snapshot.get("status") != "queued":
                    break
                if time.perf_counter() - begun > 60:
                    raise RuntimeError("no progress within 60 s: is the worker running?")
                time.sleep(0.002)
            if index:
                latencies.append(time.perf_counter() - begun)
            while RenderJob.objects.get(pk=render.pk).status not in ("complete", "failed", "canceled"):
                time.sleep(0.02)
        cache.clear()
        return latencies
    finally:
        worker.terminate()
        worker.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="renders per mode (on/off)")
    parser.add_argument("--starts", type=int, default=7, help="measured enqueue -> first progress samples")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="bench-renders-"))
    media = base / "media"
    media.mkdir()
    redis_process, redis_url = start_redis(base)
    env = {"REDIS_URL": redis_url, "DATABASE_URL": f"sqlite:///{base / 'db.sqlite3'}", "MEDIA_ROOT": str(media),
           "DJANGO_SETTINGS_MODULE": "mediasite.settings", "LOG_LEVEL": "WARNING"}
    os.environ.update(env)
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        make_sources(media)
        from transforms.renders.recipes import validate_recipe

        recipe = validate_recipe(RECIPE)

        timings: dict[bool, list[float]] = {True: [], False: []}
        writes: list[int] = []
        inside: list[float] = []
        render_once(recipe, base / "warm", progress=False)  # file cache, imports
        for _ in range(args.runs):
            for progress in (False, True):
                elapsed, count, spent = render_once(recipe, base / "work", progress)
                timings[progress].append(elapsed)
                if progress:
                    writes.append(count)
                    inside.append(100 * spent / elapsed)
        off, on = statistics.median(timings[False]), statistics.median(timings[True])
        latencies = time_to_first_progress(args.starts, env, base / "worker.log")

        print(f"10 s 1280x720 24 fps recipe, {args.runs} runs per mode (alternating), medians")
        print(f"{'mode':<28}{'median s':>10}{'min s':>10}{'max s':>10}")
        for label, values in (("progress off (logger=None)", timings[False]),
                              ("progress on (cache writes)", timings[True])):
            print(f"{label:<28}{statistics.median(values):>10.2f}{min(values):>10.2f}{max(values):>10.2f}")
        print(f"wall-clock difference of the medians: {100 * (on - off) / off:+.2f}%"
              f"  (cache writes per render: {statistics.median(writes):.0f})")
        print(f"time spent inside the progress logger: median {statistics.median(inside):.3f}% of the render"
              f" (max {max(inside):.3f}%)")
        print()
        print(f"enqueue -> first progress update, {len(latencies)} samples, real rqworker")
        print(f"{'median s':>10}{'min s':>10}{'max s':>10}")
        print(f"{statistics.median(latencies):>10.3f}{min(latencies):>10.3f}{max(latencies):>10.3f}")
    finally:
        redis_process.terminate()
        redis_process.wait()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
