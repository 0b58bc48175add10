"""Video benchmark: a transcode through the service vs the same ffmpeg command alone.

    flock /tmp/mediasite-bench.lock .venv/bin/python bench/video.py [--runs 5]

Makes a 10 s 1280x720 clip (testsrc2 + tone), starts gunicorn on a free loopback
port, then, alternating so that drift hits both sides alike:

- direct: the exact argv the ffmpeg engine builds for the request, stdout to /dev/null
  (and once more with stdout read from a pipe, for ffmpeg's own time to first byte);
- service: the same request over HTTP, the body read to the end in 1 MiB blocks.

It prints medians (and min..max) of time to first byte and total time, the service's
overhead over ffmpeg alone, and the cost of a cold frame grab next to ffmpeg's bare
start-up (``ffmpeg -version``), ffprobe, and the same frame-grab command run directly;
then the same frame-grab URL repeated (a result-cache hit where the cache exists).
Each transcode and cold grab gets a URL of its own (``bg`` varies, which changes the
URL but not the argv), so a result cache cannot turn them into hits.
"""

from __future__ import annotations

import argparse
import http.client
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

TRANSCODES = [
    ("mp4 720p (H.264+AAC, fragmented)", "format=mp4"),
    ("webm 720p (VP9+Opus realtime)", "format=webm"),
    ("mp4 360p", "format=mp4&size=x360"),
]
FRAME = "frame=5&size=320x180"


def unique(run: int) -> str:
    """A parameter that changes the URL (so a result cache, where present, misses) but not ffmpeg's argv:
    ``bg`` is only used by fit=pad."""
    return f"bg=0000{run:02x}"


def cache_state() -> str:
    try:
        import transforms.cache  # noqa: F401
    except ImportError:
        return "no result cache in this checkout: made again each time"
    return "a result-cache hit"


def make_clip(path: Path) -> None:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=10",
         "-f", "lavfi", "-i", "sine=frequency=440:duration=10",
         "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
         "-movflags", "+faststart", str(path)],
        check=True, timeout=120,
    )  # fmt: skip


def engine_argv(media_root: Path, name: str, query: str) -> list[str]:
    """The argv the service would run for ``/name?query`` (built by the real engine)."""
    os.environ["MEDIA_ROOT"] = str(media_root)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediasite.settings")
    import django

    django.setup()
    from transforms.engines.ffmpeg import FfmpegEngine
    from transforms.probe import probe_media
    from transforms.sources import resolve
    from transforms.spec import parse_query
    from transforms.video import media_job

    pairs = dict(pair.split("=", 1) for pair in query.split("&"))
    spec = parse_query({key: [value] for key, value in pairs.items()})
    source = resolve(name)
    (argv,) = FfmpegEngine().commands(media_job(source, probe_media(source), spec))
    return argv


def run_direct(argv: list[str]) -> tuple[float, float]:
    """ffmpeg alone: (time to first byte on a pipe, total time with stdout at /dev/null)."""
    started = time.perf_counter()
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL) as proc:
        proc.stdout.read(1)
        first = time.perf_counter() - started
        proc.kill()
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        subprocess.run(argv, stdout=sink, stdin=subprocess.DEVNULL, check=True)
    return first, time.perf_counter() - started


def run_service(port: int, path: str) -> tuple[float, float, int]:
    """Over HTTP: (time to first body byte, total time, bytes)."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("GET", path)
    response = connection.getresponse()
    if response.status != 200:
        raise RuntimeError(f"{path}: {response.status} {response.read()[:300]!r}")
    first_block = response.read1(1 << 20)
    first = time.perf_counter() - started
    size = len(first_block)
    while block := response.read1(1 << 20):
        size += len(block)
    total = time.perf_counter() - started
    connection.close()
    return first, total, size


def wait_ready(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("gunicorn exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("gunicorn did not start")


def summary(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:7.0f} ms ({min(values) * 1000:.0f}..{max(values) * 1000:.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="mediasite-bench-video-"))
    media = workdir / "media"
    media.mkdir()
    make_clip(media / "clip.mp4")
    port = free_port()
    env = {**os.environ, "MEDIA_ROOT": str(media), "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "1",
           "GUNICORN_ACCESSLOG": "", "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
           "TRANSFORMS_CACHE": "0"}  # every run transcodes live; a cached result would be a file send  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "mediasite/gunicorn.conf.py", "mediasite.wsgi"],
        cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_ready(port, server)
        run_service(port, f"/clip.mp4?{FRAME}")  # warm up the worker (imports, first ffprobe)
        print(f"10 s 1280x720 source, {args.runs} runs each, medians (min..max); {os.cpu_count()} CPUs\n")
        print(f"{'transcode':36} {'ffmpeg TTFB':>22} {'service TTFB':>22} {'ffmpeg total':>22} "
              f"{'service total':>22} {'overhead':>9} {'(of mins)':>9}")  # fmt: skip
        for label, query in TRANSCODES:
            argv = engine_argv(media, "clip.mp4", query)
            direct_first, direct_total, service_first, service_total = [], [], [], []
            for run in range(args.runs):
                first, total = run_direct(argv)
                direct_first.append(first)
                direct_total.append(total)
                first, total, _size = run_service(port, f"/clip.mp4?{query}&{unique(run)}")
                service_first.append(first)
                service_total.append(total)
            overhead = statistics.median(service_total) / statistics.median(direct_total) - 1
            best = min(service_total) / min(direct_total) - 1
            print(f"{label:36} {summary(direct_first):>22} {summary(service_first):>22} "
                  f"{summary(direct_total):>22} {summary(service_total):>22} {overhead:+8.1%} {best:+8.1%}")

        bare, probes, direct_frames, service_frames = [], [], [], []
        frame_argv = engine_argv(media, "clip.mp4", FRAME)
        from transforms.probe import probe_command
        from transforms.sources import resolve

        probe_argv = probe_command(resolve("clip.mp4"))
        for _ in range(args.runs * 2):
            started = time.perf_counter()
            subprocess.run(["ffmpeg", "-hide_banner", "-version"], stdout=subprocess.DEVNULL, check=True)
            bare.append(time.perf_counter() - started)
            started = time.perf_counter()
            subprocess.run(probe_argv, stdout=subprocess.DEVNULL, check=True)
            probes.append(time.perf_counter() - started)
            direct_frames.append(run_direct(frame_argv)[1])
            service_frames.append(run_service(port, f"/clip.mp4?{FRAME}&{unique(100 + len(probes))}")[1])
        run_service(port, f"/clip.mp4?{FRAME}")
        repeats = [run_service(port, f"/clip.mp4?{FRAME}")[1] for _ in range(args.runs * 2)]
        print(f"\ncold frame grab ({FRAME}, a new URL each run: never a cache hit), {args.runs * 2} runs:")
        print(f"  ffmpeg -version (bare start-up)           {summary(bare)}")
        print(f"  ffprobe of the source (first request)     {summary(probes)}")
        print(f"  ffmpeg frame-grab command alone           {summary(direct_frames)}")
        print(f"  through the service (probe kept, + HTTP)  {summary(service_frames)}")
        print(f"\nthe same frame-grab URL again ({cache_state()}):")
        print(f"  through the service                       {summary(repeats)}")
    finally:
        server.terminate()
        server.wait(timeout=15)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
