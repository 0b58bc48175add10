"""HLS benchmark: a cold seek into a long source, and what watching through HLS costs.

    flock /tmp/mediasite-bench.lock .venv/bin/python bench/hls.py [--runs 3]

Makes (once, kept in var/bench/) a 10-minute 1920x1080 25 fps source (30 s of testsrc2 +
tone, x264 veryfast with a keyframe every 250 frames as x264 does by default, repeated 20
times by stream copy) and starts gunicorn
with the result cache off, so every request runs ffmpeg. Then:

- Cold seek: the 1080p segment that holds 75% of the source (450 s), fetched over HTTP
  (time to first body byte, time to the whole segment), alternating with the exact argv
  the engine builds run alone with stdout at /dev/null, and with a plain ``ffmpeg -ss
  <start> -t <length>`` cut to a fragmented MP4 with the same encoder settings.
- Watching 2 minutes: the 720p rendition's segments that cover 0..120 s, one after the
  other, against one progressive transcode of the same two minutes
  (``format=mp4&size=x720&duration=120``): CPU seconds of the gunicorn worker and the
  ffmpeg processes it reaped (/proc), and wall time.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from bench.media import clip  # noqa: E402
from bench.procfs import WITH_REAPED_CHILDREN, cpu_seconds, descendants  # noqa: E402
from bench.video import engine_argv, run_direct, run_service, start_server, summary  # noqa: E402

SOURCE = PROJECT / "var" / "bench" / "hls-1080p-600s.mp4"
RENDITION = "/film.mp4?format=hls&rendition={}"


def source() -> Path:
    """30 s drawn and encoded, then repeated 20 times without re-encoding (timestamps run on)."""
    if not SOURCE.exists():
        print("making the 10-minute 1080p source (once; kept in var/bench/)...", flush=True)
        unit = clip(SOURCE.with_suffix(".unit.mp4"), seconds=30, size="1920x1080", fps=25, preset="veryfast")
        partial = SOURCE.with_suffix(".partial.mp4")
        subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-stream_loop", "19",
                        "-i", str(unit), "-c", "copy", "-movflags", "+faststart", str(partial)],
                       check=True, timeout=600, stdin=subprocess.DEVNULL)  # fmt: skip
        unit.unlink()
        partial.rename(SOURCE)
    return SOURCE


def segments(port: int, height: int) -> list[tuple[float, float]]:
    """(start, end) of each segment of a rendition, from its media playlist's EXTINF lines."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", RENDITION.format(height))
    lines = connection.getresponse().read().decode().splitlines()
    connection.close()
    durations = [float(line[8:].rstrip(",")) for line in lines if line.startswith("#EXTINF:")]
    return [(sum(durations[:n]), sum(durations[:n + 1])) for n in range(len(durations))]


def plain_cut(path: Path, start: float, length: float) -> list[str]:
    """What one would type: seek, cut the segment's length, the same encoder settings, a fragmented MP4."""
    return ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-ss", f"{start:.3f}", "-t", f"{length:.3f}",
            "-i", str(path), "-c:v", "libx264", "-preset", "veryfast", "-crf", "21", "-bf", "0",
            "-c:a", "aac", "-b:a", "128k", "-movflags", "frag_keyframe+empty_moov+default_base_moof",
            "-frag_duration", "1000000", "-f", "mp4", "pipe:1"]  # fmt: skip


def cold_seek(media: Path, port: int, runs: int) -> None:
    spans = segments(port, 1080)
    index = next(n for n, (start, end) in enumerate(spans) if start <= 450 < end)
    seek = f"format=hls&rendition=1080&segment={index}"
    argv = engine_argv(media, "film.mp4", seek)
    plain = plain_cut(media / "film.mp4", spans[index][0], spans[index][1] - spans[index][0])
    rows: dict[str, tuple[list[float], list[float]]] = {"service": ([], []), "engine argv alone": ([], []),
                                                        "plain ffmpeg cut": ([], [])}  # fmt: skip
    for _ in range(runs):
        first, total, _ = run_service(port, f"/film.mp4?{seek}")
        rows["service"][0].append(first)
        rows["service"][1].append(total)
        for label, command in (("engine argv alone", argv), ("plain ffmpeg cut", plain)):
            first, total = run_direct(command)
            rows[label][0].append(first)
            rows[label][1].append(total)
    start, end = spans[index]
    print(f"cold seek: the 1080p segment at 75% ({seek}: {start:.1f}..{end:.1f} s), {runs} runs, medians (min..max)")
    print(f"  {'':20} {'first byte':>22} {'whole segment':>22}")
    for label, (firsts, totals) in rows.items():
        print(f"  {label:20} {summary(firsts):>22} {summary(totals):>22}")
    ratio = statistics.median(rows["service"][1]) / statistics.median(rows["engine argv alone"][1]) - 1
    print(f"  service over the engine's argv alone: {ratio:+.1%}\n")


def watch(port: int, worker: int, paths: list[str]) -> tuple[float, float]:
    """CPU seconds (worker + reaped ffmpeg) and wall seconds to fetch ``paths`` one after the other."""
    cpu, wall = cpu_seconds([worker], WITH_REAPED_CHILDREN), time.perf_counter()
    for path in paths:
        run_service(port, path)
    return cpu_seconds([worker], WITH_REAPED_CHILDREN) - cpu, time.perf_counter() - wall


def two_minutes(port: int, worker: int, runs: int) -> None:
    watched = [n for n, (start, _) in enumerate(segments(port, 720)) if start < 120]
    hls = ["/film.mp4?format=hls&rendition=720&segment=init"] + [
        f"/film.mp4?format=hls&rendition=720&segment={n}" for n in watched]
    progressive = ["/film.mp4?format=mp4&size=x720&duration=120"]
    label = f"HLS 720p, {len(watched)} segments"
    results: dict[str, list[tuple[float, float]]] = {label: [], "progressive mp4 720p": []}
    for _ in range(runs):
        results[label].append(watch(port, worker, hls))
        results["progressive mp4 720p"].append(watch(port, worker, progressive))
    print(f"watching 2 minutes at 720p, {runs} runs, medians (min..max)")
    for label, values in results.items():
        cpu = [c for c, _ in values]
        wall = [w for _, w in values]
        print(f"  {label:24} CPU {statistics.median(cpu):6.1f} s ({min(cpu):.1f}..{max(cpu):.1f})"
              f"   wall {statistics.median(wall):6.1f} s ({min(wall):.1f}..{max(wall):.1f})")
    hls_cpu, plain_cpu = (statistics.median(c for c, _ in v) for v in results.values())
    print(f"  HLS over progressive: {hls_cpu / plain_cpu - 1:+.1%} CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    media = Path(tempfile.mkdtemp(prefix="mediasite-bench-hls-"))
    os.link(source(), media / "film.mp4")
    server, port = start_server(media, cache=None)
    try:
        run_service(port, "/film.mp4?format=hls")  # warm up: imports, the first ffprobe
        print(f"10-minute 1920x1080 25 fps source, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}\n")
        cold_seek(media, port, args.runs)
        two_minutes(port, descendants(server.pid)[0], args.runs)  # one worker; ffmpeg runs only meanwhile
    finally:
        server.terminate()
        server.wait(timeout=15)
        (media / "film.mp4").unlink()
        media.rmdir()


if __name__ == "__main__":
    main()
