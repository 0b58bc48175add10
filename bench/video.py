"""Video benchmark: a transcode through the service vs the same ffmpeg command alone.

    flock /tmp/mediasite-bench.lock .venv/bin/python bench/video.py [--runs 5]

Makes a 10 s 1280x720 clip (testsrc2 + tone), starts gunicorn on a free loopback
port with the result cache off, then, alternating so that drift hits both sides alike:

- direct: the exact argv the ffmpeg engine builds for the request, stdout to /dev/null
  (and once more with stdout read from a pipe, for ffmpeg's own time to first byte);
- service: the same request over HTTP, the body read to the end in 1 MiB blocks.

It prints medians (and min..max) of time to first byte and total time, the service's
overhead over ffmpeg alone, and the cost of a cold frame grab next to ffmpeg's bare
start-up (``ffmpeg -version``), ffprobe, and the same frame-grab command run directly.
Each transcode and cold grab gets a URL of its own (``bg`` varies, which changes the
URL but not the argv), and the cache is off, so each one runs ffmpeg.

Last, a result-cache hit: a second gunicorn with the cache on (replays off) renders the
frame-grab URL once, a Range request proves the next answer comes from the cache file
(a 206; a live render has no ranges), and the same URL is timed again.
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

from bench.media import clip  # noqa: E402
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


def start_server(media: Path, cache: Path | None) -> tuple[subprocess.Popen, int]:
    """gunicorn (one worker) on a free port: the result cache off, or on in ``cache`` with replays off.

    With the cache off every request transcodes live (a cached result would be a file send);
    replays are off where it is on, so a repeated request is a cache hit through Django.
    """
    port = free_port()
    env = {**os.environ, "MEDIA_ROOT": str(media), "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "1",
           "GUNICORN_ACCESSLOG": "", "DJANGO_ALLOWED_HOSTS": "127.0.0.1"}  # fmt: skip
    if cache is None:
        env["TRANSFORMS_CACHE"] = "0"
    else:
        env.update(TRANSFORMS_CACHE="1", TRANSFORMS_CACHE_DIR=str(cache), STREAMING_REPLAY_BYTES="0")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "mediasite/gunicorn.conf.py", "mediasite.wsgi"],
        cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_ready(port, server)
    return server, port


def compare_transcodes(media: Path, port: int, runs: int) -> None:
    """Each transcode run by ffmpeg alone and through the service, alternately; one table row each."""
    print(f"{'transcode':36} {'ffmpeg TTFB':>22} {'service TTFB':>22} {'ffmpeg total':>22} "
          f"{'service total':>22} {'overhead':>9} {'(of mins)':>9}")  # fmt: skip
    for label, query in TRANSCODES:
        argv = engine_argv(media, "clip.mp4", query)
        direct_first, direct_total, service_first, service_total = [], [], [], []
        for run in range(runs):
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


def compare_frame_grabs(media: Path, port: int, runs: int) -> None:
    """A cold frame grab through the service next to what it is made of: start-up, ffprobe, ffmpeg."""
    bare, probes, direct_frames, service_frames = [], [], [], []
    frame_argv = engine_argv(media, "clip.mp4", FRAME)
    from transforms.probe import probe_command
    from transforms.sources import resolve

    probe_argv = probe_command(resolve("clip.mp4"))
    for _ in range(runs * 2):
        started = time.perf_counter()
        subprocess.run(["ffmpeg", "-hide_banner", "-version"], stdout=subprocess.DEVNULL, check=True)
        bare.append(time.perf_counter() - started)
        started = time.perf_counter()
        subprocess.run(probe_argv, stdout=subprocess.DEVNULL, check=True)
        probes.append(time.perf_counter() - started)
        direct_frames.append(run_direct(frame_argv)[1])
        service_frames.append(run_service(port, f"/clip.mp4?{FRAME}&{unique(100 + len(probes))}")[1])
    print(f"\ncold frame grab ({FRAME}, a new URL each run, the cache off: never a cache hit), {runs * 2} runs:")
    print(f"  ffmpeg -version (bare start-up)           {summary(bare)}")
    print(f"  ffprobe of the source (first request)     {summary(probes)}")
    print(f"  ffmpeg frame-grab command alone           {summary(direct_frames)}")
    print(f"  through the service (probe kept, + HTTP)  {summary(service_frames)}")


def range_status(port: int, path: str) -> int:
    """The status of ``Range: bytes=0-0`` for ``path``: 206 only when the answer is a stored file."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    connection.request("GET", path, headers={"Range": "bytes=0-0"})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status


def measure_cache_hits(port: int, runs: int) -> None:
    """The frame-grab URL rendered once into the result cache, checked to be a hit, then timed."""
    path = f"/clip.mp4?{FRAME}"
    run_service(port, path)  # a miss: ffmpeg renders it while the bytes fill the cache file
    deadline = time.monotonic() + 10  # the file is published just after the body's last byte went out
    while (status := range_status(port, path)) != 206:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} is not answered from the result cache (Range gave {status}, not 206)")
        time.sleep(0.1)
    repeats = [run_service(port, path)[1] for _ in range(runs * 2)]
    print(f"\nthe same frame-grab URL again: a result-cache hit (Django + sendfile, replays off), {runs * 2} runs:")
    print(f"  through the service                       {summary(repeats)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="mediasite-bench-video-"))
    media = workdir / "media"
    clip(media / "clip.mp4", seconds=10, size="1280x720", fps=25, preset="veryfast")
    servers = []
    try:
        live, port = start_server(media, cache=None)
        servers.append(live)
        run_service(port, f"/clip.mp4?{FRAME}")  # warm up the worker (imports, first ffprobe)
        print(f"10 s 1280x720 source, {args.runs} runs each, medians (min..max); {os.cpu_count()} CPUs\n")
        compare_transcodes(media, port, args.runs)
        compare_frame_grabs(media, port, args.runs)
        cached, cached_port = start_server(media, cache=workdir / "cache")
        servers.append(cached)
        measure_cache_hits(cached_port, args.runs)
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=15)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
