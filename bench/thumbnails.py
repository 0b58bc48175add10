"""Thumbnail throughput and CPU per request: mediasite's engines under gunicorn vs thumbor vs in-process.

    flock /tmp/mediasite-bench.lock .venv/bin/python bench/thumbnails.py [--duration 4] [--runs 3]

For a 1920x1080 and a 4000x3000 baseline JPEG (drawn photo-like: gradients,
shapes and grain, so the entropy coder has real work) -> 300x200 contain, cover,
cover with gravity=smart (thumbor: ``/smart/`` with its face and feature detectors,
OpenCV installed for them) and cover at dpr=2 (thumbor: 600x400), it runs wrk against:

* mediasite under gunicorn (2 gthread workers on loopback), once per engine;
* thumbor 7 (from PyPI, in its own virtualenv under var/bench/, result storage
  and storage off, file loader), as two single-process instances, each driven
  by its own wrk with half the connections (round robin per connection, with no
  proxy process taking CPU from the two cores);

All servers stay up for the whole run and each cell's runs are interleaved
across them, so load from elsewhere on a shared machine falls on all alike;
* the same transform in-process in a loop (the ceiling): for pillow the engine
  call alone; for the tool engines the pipeline alone, without HTTP.

Server CPU per request comes from /proc/<pid>/stat (utime+stime of the server
processes, plus cutime+cstime: the tools the workers reaped), read before and
after each run. Peak RSS is VmHWM of each server process at the end. Each cell is
the median of ``--runs`` runs. Nothing here is a test: it prints a table.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from bench.procfs import WITH_REAPED_CHILDREN, cpu_seconds, descendants, free_port  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediasite.settings")

WORK = PROJECT / "var" / "bench"
MEDIA = WORK / "media"
THUMBOR_VENV = WORK / "thumbor-venv"
SOURCES = {"1920x1080": (1920, 1080), "4000x3000": (4000, 3000)}
FITS = {"contain": "", "cover": "&fit=cover", "smart": "&fit=cover&gravity=smart", "dpr2": "&fit=cover&dpr=2"}
THUMBOR_PATHS = {"contain": "/unsafe/fit-in/300x200/", "cover": "/unsafe/300x200/", "smart": "/unsafe/300x200/smart/",
                 "dpr2": "/unsafe/600x400/"}
# Cells an engine refuses (400 naming engine): only Pillow does gravity=smart.
REFUSED = {("convert", "smart"), ("cjpeg", "smart")}


# --- sources -------------------------------------------------------------------------------

def photo_like(width: int, height: int):
    """A baseline JPEG's worth of picture: smooth gradients, hard edges and grain, like a photo."""
    from PIL import Image, ImageDraw, ImageFilter

    base = Image.merge("RGB", [
        Image.linear_gradient("L").resize((width, height)),
        Image.radial_gradient("L").resize((width, height)),
        Image.linear_gradient("L").rotate(90).resize((width, height)),
    ])
    draw = ImageDraw.Draw(base)
    for i in range(40):
        x, y = (i * 7919) % width, (i * 104729) % height
        r = (width // 12) * (1 + i % 3)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=((i * 53) % 256, (i * 97) % 256, (i * 31) % 256))
    # texture at two scales: coarse (foliage, fabric) and fine (sensor grain), so the file is as
    # large as a camera's (about 0.3 bytes per pixel at quality 90) and the entropy decoder has real work
    coarse = Image.effect_noise((width // 3, height // 3), 64).resize((width, height)).filter(ImageFilter.BLUR)
    fine = [Image.effect_noise((width, height), 40) for _ in range(3)]
    textured = Image.blend(base, Image.merge("RGB", [coarse] * 3), 0.3)
    return Image.blend(textured, Image.merge("RGB", fine), 0.12)


def make_sources() -> None:
    MEDIA.mkdir(parents=True, exist_ok=True)
    for name, size in SOURCES.items():
        path = MEDIA / f"{name}.jpg"
        if not path.exists():
            photo_like(*size).save(path, "JPEG", quality=90, progressive=False)


# --- process accounting ----------------------------------------------------------------------

def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def wait_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.args}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open")


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- load --------------------------------------------------------------------------------------

WRK_LINE = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, duration: float, connections: int) -> subprocess.Popen:
    seconds = f"{max(1, round(duration))}s"
    argv = ["wrk", "--latency", "-t", str(min(2, connections)), "-c", str(connections), "-d", seconds, url]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def parse_wrk(output: str) -> dict:
    found = re.search(r"(\d+) requests in", output)
    if found is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    requests = int(found.group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    latency = {int(p): float(v) * UNITS[u] for p, v, u in WRK_LINE.findall(output)}
    return {"requests": requests, "bad": int(bad.group(1)) if bad else 0, "p50": latency[50], "p99": latency[99]}


def measure(urls: list[str], pids: list[int], duration: float, connections: int) -> dict:
    """One run: wrk on every URL at once (connections split), CPU of ``pids`` over the run."""
    cpu_before, started = cpu_seconds(pids, WITH_REAPED_CHILDREN), time.monotonic()
    loads = [wrk(url, duration, connections // len(urls)) for url in urls]
    results = [parse_wrk(load.communicate()[0]) for load in loads]
    elapsed, cpu = time.monotonic() - started, cpu_seconds(pids, WITH_REAPED_CHILDREN) - cpu_before
    requests = sum(r["requests"] for r in results)
    return {
        "rps": requests / duration,
        "p50": statistics.mean(r["p50"] for r in results),
        "p99": max(r["p99"] for r in results),
        "cpu_ms": 1000 * cpu / requests if requests else float("inf"),  # inf: not one request finished
        "bad": sum(r["bad"] for r in results),
        "elapsed": elapsed,
    }


def median_of(runs: list[dict]) -> dict:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


# --- servers ----------------------------------------------------------------------------------

def start_gunicorn(port: int, workers: int, app: str = "mediasite.wsgi",
                   config: str = "mediasite/gunicorn.conf.py") -> subprocess.Popen:
    """gunicorn serving ``app`` with ``config`` on the benchmark's media, transforming every request."""
    env = {**os.environ, "MEDIA_ROOT": str(MEDIA), "GUNICORN_BIND": f"127.0.0.1:{port}",
           "GUNICORN_WORKERS": str(workers), "GUNICORN_THREADS": "8", "GUNICORN_ACCESSLOG": "",
           "GUNICORN_LOGLEVEL": "warning", "DJANGO_ALLOWED_HOSTS": "127.0.0.1", "TRANSFORMS_CONCURRENCY": "16",
           # every request must transform: the result cache would turn them into file sends
           "TRANSFORMS_CACHE": "0"}
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", config, app], cwd=PROJECT, env=env)
    wait_port(port, process)
    time.sleep(1)
    return process


THUMBOR_CONF = """
LOADER = 'thumbor.loaders.file_loader'
FILE_LOADER_ROOT_PATH = {root!r}
STORAGE = 'thumbor.storages.no_storage'
RESULT_STORAGE = 'thumbor.result_storages.no_storage'
ALLOW_UNSAFE_URL = True
QUALITY = 85
AUTO_WEBP = False
RESPECT_ORIENTATION = True
# /smart/ runs these (thumbor's own recommendation); without detectors it would crop the centre
DETECTORS = ['thumbor.detectors.face_detector', 'thumbor.detectors.feature_detector']
"""


def thumbor_ready() -> str | None:
    """Why thumbor cannot run, or None. It is installed into its own virtualenv on first use,
    with OpenCV for the face and feature detectors its smart crop runs."""
    pip = str(THUMBOR_VENV / "bin" / "pip")
    if not (THUMBOR_VENV / "bin" / "thumbor").exists():
        subprocess.run([sys.executable, "-m", "venv", str(THUMBOR_VENV)], check=True)
        result = subprocess.run([pip, "install", "-q", "thumbor>=7.7,<8"], capture_output=True, text=True)
        if result.returncode != 0:
            return "pip install thumbor failed: " + result.stderr.strip()[-300:]
    if subprocess.run([str(THUMBOR_VENV / "bin" / "python"), "-c", "import cv2"], capture_output=True).returncode:
        result = subprocess.run([pip, "install", "-q", "opencv-python-headless<5"], capture_output=True, text=True)
        if result.returncode != 0:
            return "pip install opencv-python-headless failed: " + result.stderr.strip()[-300:]
    return None


def start_thumbor(port: int) -> subprocess.Popen:
    conf = WORK / "thumbor.conf"
    conf.write_text(THUMBOR_CONF.format(root=str(MEDIA)))
    process = subprocess.Popen([str(THUMBOR_VENV / "bin" / "thumbor"), "-p", str(port), "-i", "127.0.0.1",
                                "-c", str(conf), "-l", "error", "--processes", "1"])
    wait_port(port, process)
    return process


# --- in-process ceiling ----------------------------------------------------------------------

def thumbnail_job(source_name: str, fit: str):
    """The benchmarked job, planned as the view plans it: ``<source>.jpg`` -> 300x200 JPEG at quality 85."""
    import django
    from django.conf import settings

    django.setup()
    settings.MEDIA_ROOT = MEDIA
    from transforms.engines import ImageJob
    from transforms.geometry import plan_for
    from transforms.sources import probe_image, resolve
    from transforms.spec import parse_query

    source = resolve(f"{source_name}.jpg")
    spec = parse_query(parse_qs("size=300x200" + FITS[fit]))
    info = probe_image(source)
    return ImageJob(source, info, plan_for((info.width, info.height), spec, 4096), "jpeg", 85, "ffffff", spec=spec)


def in_process_ms(engine_name: str, source_name: str, fit: str, loops: int) -> float:
    """CPU milliseconds of one transform without HTTP: the engine (and its tools) alone."""
    job = thumbnail_job(source_name, fit)
    from transforms.engines import ENGINES

    engine = ENGINES[engine_name]

    def once() -> None:
        result = engine.render(job, deadline=30, on_close=lambda: None)
        if not isinstance(result, bytes):
            with result:
                result.wait_for_output()
                while result.read():
                    pass

    once()
    samples = []
    for _ in range(2):
        self_before = time.process_time()
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        for _ in range(loops):
            once()
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        tools = (children_after.ru_utime + children_after.ru_stime) - (
            children_before.ru_utime + children_before.ru_stime)
        samples.append(1000 * (time.process_time() - self_before + tools) / loops)
    return statistics.median(samples)


# --- main ---------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=4, help="seconds per wrk run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=4, help="enough to keep both cores busy")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--engines", default="pillow,convert,cjpeg")
    parser.add_argument("--sources", default=",".join(SOURCES), help="which of " + ", ".join(SOURCES))
    parser.add_argument("--fits", default=",".join(FITS), help="which of " + ", ".join(FITS))
    parser.add_argument("--no-thumbor", action="store_true")
    args = parser.parse_args()
    sources, fits = args.sources.split(","), args.fits.split(",")
    for chosen, known in ((sources, SOURCES), (fits, FITS)):
        for name in set(chosen) - set(known):
            parser.error(f"unknown {name!r}: choose from {', '.join(known)}")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed")
    make_sources()

    # Every server is started first and stays up (idle ones cost nothing); each cell's runs are
    # interleaved across servers, so a burst of load from elsewhere on a shared machine hits
    # every server alike instead of whichever happened to be measured at that moment.
    processes: list[subprocess.Popen] = []
    thumbor_problem = "skipped (--no-thumbor)" if args.no_thumbor else thumbor_ready()
    try:
        servers = start_servers(args, processes, with_thumbor=thumbor_problem is None)
        rows = [row for source in sources for fit in fits for row in measure_cell(servers, source, fit, args)]
        for row in rows:
            row[5] = max(peak_rss_mib(pid) for pid in row[5]["rss"])
    finally:
        for process in processes:
            stop(process)

    print_table(rows, args)
    if thumbor_problem:
        print(f"\nthumbor: {thumbor_problem}")
    print_targets(rows)


def start_servers(args: argparse.Namespace, processes: list[subprocess.Popen], with_thumbor: bool) -> list[dict]:
    """One gunicorn per engine and two single-process thumbors; each started process joins ``processes``."""
    servers: list[dict] = []
    for engine in args.engines.split(","):
        port = free_port()
        process = start_gunicorn(port, args.workers)
        processes.append(process)
        workers = descendants(process.pid)
        servers.append({
            "name": f"mediasite {engine}", "engine": engine, "pids": [process.pid, *workers], "rss": workers,
            "urls": lambda source, fit, port=port, engine=engine: [
                f"http://127.0.0.1:{port}/{source}.jpg?size=300x200{FITS[fit]}&engine={engine}"],
        })
    if with_thumbor:
        ports = [free_port(), free_port()]
        for port in ports:
            processes.append(start_thumbor(port))
        pids = [process.pid for process in processes[-2:]]
        servers.append({
            "name": "thumbor 2x1 process", "engine": None, "pids": pids, "rss": pids,
            "urls": lambda source, fit, ports=ports: [
                f"http://127.0.0.1:{port}{THUMBOR_PATHS[fit]}{source}.jpg" for port in ports],
        })
    return servers


def measure_cell(servers: list[dict], source: str, fit: str, args: argparse.Namespace) -> list[list]:
    """One (source, fit) cell: runs interleaved across the servers that do it; a row of medians each."""
    cell_servers = [server for server in servers if (server["engine"], fit) not in REFUSED]
    runs: dict[str, list[dict]] = {server["name"]: [] for server in cell_servers}
    ceilings: dict[str, list[float]] = {server["name"]: [] for server in cell_servers}
    for server in cell_servers:
        measure(server["urls"](source, fit), server["pids"], 1, args.connections)  # warm up
    loops = 10 if source == "1920x1080" else 4
    for _ in range(args.runs):
        for server in cell_servers:
            runs[server["name"]].append(
                measure(server["urls"](source, fit), server["pids"], args.duration, args.connections))
            # the ceiling is measured right after, so both see the same background load
            if server["engine"]:
                ceilings[server["name"]].append(in_process_ms(server["engine"], source, fit, loops))
    rows = []
    for server in cell_servers:
        ceiling = statistics.median(ceilings[server["name"]]) if ceilings[server["name"]] else None
        rows.append([server["name"], source, fit, median_of(runs[server["name"]]), ceiling, server])
    return rows


THUMBOR_TARGETS = {"contain": 1.2, "cover": 3.0, "smart": 2.0}


def print_targets(rows: list[list]) -> None:
    """The issues' targets, computed from the table."""
    cells = {(row[0], row[1], row[2]): row for row in rows}
    print()
    for source in SOURCES:
        for fit in FITS:
            pillow = cells.get(("mediasite pillow", source, fit))
            thumbor = cells.get(("thumbor 2x1 process", source, fit))
            if not (pillow and pillow[4]):
                continue
            line = f"pillow {source} {fit}: server CPU / in-process = {pillow[3]['cpu_ms'] / pillow[4]:.2f} (<= 1.15)"
            if thumbor:
                target = THUMBOR_TARGETS.get(fit)
                line += (f"; req/s vs thumbor {pillow[3]['rps'] / thumbor[3]['rps']:.2f}x, "
                         f"CPU/req thumbor / ours {thumbor[3]['cpu_ms'] / pillow[3]['cpu_ms']:.2f}x"
                         + (f" (target >= {target}x)" if target else ""))
            cover = cells.get(("mediasite pillow", source, "cover"))
            if fit == "smart" and cover:
                line += f"; smart / centre crop CPU/req = {pillow[3]['cpu_ms'] / cover[3]['cpu_ms']:.2f} (<= 1.3)"
            print(line)


def print_table(rows: list[tuple], args: argparse.Namespace) -> None:
    print(f"\n{args.runs} runs x {args.duration:g}s, {args.connections} connections, "
          f"gunicorn {args.workers} gthread workers; medians\n")
    print("| server | source | fit | req/s | p50 ms | p99 ms | server CPU ms/req | in-process ms | ratio | "
          "peak RSS/worker MiB | errors |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, source, fit, result, ceiling, rss in rows:
        ratio = f"{result['cpu_ms'] / ceiling:.2f}" if ceiling else "-"
        print(f"| {name} | {source} | {fit} | {result['rps']:.0f} | {result['p50']:.1f} | {result['p99']:.1f} | "
              f"{result['cpu_ms']:.1f} | {f'{ceiling:.1f}' if ceiling else '-'} | {ratio} | {rss:.0f} | "
              f"{result['bad']:.0f} |")


if __name__ == "__main__":
    main()
