"""Where a thumbnail's server CPU goes beyond the engine: gunicorn, core hopping, Django and the view.

    flock /tmp/mediasite-bench.lock .venv/bin/python bench/thumbnail_overhead.py [--rounds 6] [--connections 4]

For the 1920x1080 -> 300x200 Pillow thumbnail (the source bench/thumbnails.py
makes), it loads these servers in turn under wrk, round after round, with the
in-process engine loop measured between rounds, and prints the median server
CPU per request of each next to that in-process cost:

* gunicorn alone: ``bench.engine_wsgi`` answering ``/stub`` (bytes from memory);
* gunicorn + the engine: ``bench.engine_wsgi`` rendering per request, no Django;
* the service (Django and the view), as shipped.

Each of those is ``mediasite/gunicorn.conf.py`` with the same workers and threads.
The engine and the service are also run with ``bench/pinned_gunicorn_conf.py``
(each worker pinned to a core of its own), an experiment in keeping gthread's
hand-off from moving a request to the other core's cold cache.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from bench import thumbnails  # noqa: E402
from bench.procfs import descendants, free_port  # noqa: E402

SERVICE_PATH = "/1920x1080.jpg?size=300x200&engine=pillow"
SHIPPED, PINNED = "mediasite/gunicorn.conf.py", "bench/pinned_gunicorn_conf.py"
SERVERS = [
    # name, WSGI module, path, gunicorn config
    ("gunicorn alone (bytes from memory)", "bench.engine_wsgi", "/stub", SHIPPED),
    ("gunicorn + engine", "bench.engine_wsgi", "/engine", SHIPPED),
    ("gunicorn + engine, workers pinned", "bench.engine_wsgi", "/engine", PINNED),
    ("service (Django + view)", "mediasite.wsgi", SERVICE_PATH, SHIPPED),
    ("service (Django + view), workers pinned", "mediasite.wsgi", SERVICE_PATH, PINNED),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--duration", type=int, default=2, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", default="", help="run only the servers whose name contains this")
    args = parser.parse_args()
    thumbnails.make_sources()
    started = []
    try:
        for name, module, path, config in SERVERS:
            if args.only not in name:
                continue
            port = free_port()
            process = thumbnails.start_gunicorn(port, args.workers, module, config)
            started.append((name, process, f"http://127.0.0.1:{port}{path}", [process.pid, *descendants(process.pid)]))
        cpu: dict[str, list[float]] = {name: [] for name, *_ in started}
        ceiling = []
        for _, _, url, pids in started:
            thumbnails.measure([url], pids, 1, args.connections)  # warm up
        for _ in range(args.rounds):
            for name, _, url, pids in started:
                cpu[name].append(thumbnails.measure([url], pids, args.duration, args.connections)["cpu_ms"])
            ceiling.append(thumbnails.in_process_ms("pillow", "1920x1080", "contain", 15))
    finally:
        for _, process, _, _ in started:
            thumbnails.stop(process)

    engine = statistics.median(ceiling)
    print(f"\n{args.rounds} rounds x {args.duration}s, {args.connections} connections, "
          f"{args.workers} gthread workers x 8 threads; medians\n")
    print("| server | CPU ms/request | over the in-process engine |")
    print("|---|---|---|")
    print(f"| in-process engine loop (the ceiling) | {engine:.2f} | - |")
    for name, samples in cpu.items():
        median = statistics.median(samples)
        print(f"| {name} | {median:.2f} | {median / engine:.2f}x |")
    print("\nCPU ms/request per round, in order:")
    for name, samples in cpu.items():
        print(f"  {name}: {' '.join(f'{sample:.1f}' for sample in samples)}")


if __name__ == "__main__":
    main()
