"""mediasite/gunicorn.conf.py plus one core per worker: an experiment for bench/thumbnail_overhead.py.

Pinning keeps gthread's hand-off from moving a request to the other core's cold
cache, but a pinned worker cannot use an idle core. It is measured here rather
than shipped because its effect on this machine was within the noise
(docs/benchmarks.md).
"""

import os
from pathlib import Path

exec((Path(__file__).resolve().parents[1] / "mediasite" / "gunicorn.conf.py").read_text())


def post_fork(server, worker):
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[(worker.age - 1) % len(cpus)]})
