"""gunicorn configuration: ``gunicorn -c mediasite/gunicorn.conf.py mediasite.wsgi``.

Worker class: gthread, as ``streaming.gunicorn_worker.SpliceThreadWorker`` (gthread
plus a splice fast path for pipe bodies; see the end of this file). Responses here are long-lived streams (a transcode's
stdout, an MJPEG camera, Server-Sent Events), so a worker must keep serving other
requests while some of its threads are streaming. The sync worker cannot (one
stream blocks the worker, and it kills any stream that outlives ``--timeout``);
gthread heartbeats from its main loop, so a stream never trips the timeout, and
each stream holds one thread. CPU-bound thumbnails release the GIL inside Pillow
and the tools run as subprocesses, so threads are not a bottleneck.

Threads: 256 per worker. A camera viewer (``/cameras/<name>/stream.mjpg``) holds one
thread for as long as it watches, mostly asleep on its own event (a frame costs the
thread one wake-up and one send), so threads are cheap here but must outnumber the
viewers: a gthread worker queues requests beyond ``threads`` behind the streams,
which would starve ordinary requests. The camera views therefore cap the streams a
worker holds at ``CAMERAS_WORKER_STREAMS`` (default ``GUNICORN_THREADS`` - 32, i.e.
224; half of a pool under 64) and answer 503 + Retry-After past it, so 32 threads per worker stay
free for pages, thumbnails and transcodes (those have their own limit,
``TRANSFORMS_CONCURRENCY``). Connections are shared between workers unevenly, so
the per-worker cap, not ``workers * threads``, is what protects a worker.
``CAMERAS_MAX_VIEWERS`` (per camera, deployment-wide) sits above that. A stream
never trips ``timeout``: gthread heartbeats from its main loop, not per request.

Every value can be overridden from the environment (GUNICORN_*).
"""

import multiprocessing
import os
from pathlib import Path

# Metrics of every worker go to one folder (streaming/metrics.py); decided here, before any
# worker starts, so the master and all workers agree on it.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(Path(__file__).resolve().parent.parent / "var" / "metrics"))

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count()))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "streaming.gunicorn_worker.SpliceThreadWorker")
threads = int(os.environ.get("GUNICORN_THREADS", 256))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 60))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 10))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 5))
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")


def on_starting(server):
    """Forget the metrics files of processes that are gone (a previous run's workers)."""
    from streaming.metrics import forget_dead_processes

    forget_dead_processes()


def worker_exit(server, worker):
    """Hand the worker's last replay counts to the shared metrics before it goes."""
    from streaming.metrics import REPLAYS

    REPLAYS.flush()


def child_exit(server, worker):
    """A worker exited: its live gauges (work slots, tools, viewers) stop counting."""
    from streaming.metrics import process_exited

    process_exited(worker.pid)


def post_worker_init(worker):
    """Open the worker's metric files, and on a graceful stop (SIGTERM, also sent on reload)
    end camera streams at once.

    A camera stream never ends by itself, so without this every worker with viewers
    would wait out ``graceful_timeout`` before exiting. The handler adds to gunicorn's
    own (installed before this hook runs) and only sets an event.
    """
    import signal

    from streaming.cameras.fanout import end_all_streams
    from streaming.metrics import open_files

    open_files()

    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        end_all_streams()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)


# gunicorn 27 opens a control socket under ~/.gunicorn unless told not to.
control_socket_disable = True

# Zero-copy delivery: the worker above is gthread (same threads, same heartbeat, so
# long streams never hit --timeout) whose responses splice pipe bodies into the
# socket (streaming/gunicorn_worker.py). Files go out with sendfile(2): gunicorn's
# default. Do not set ``sendfile`` here: gunicorn's setting exists only to turn it off
# (``Config.sendfile`` is False whenever the setting has any value, True included).
