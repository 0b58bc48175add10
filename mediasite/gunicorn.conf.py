"""gunicorn configuration: ``gunicorn -c mediasite/gunicorn.conf.py mediasite.wsgi``.

Worker class: gthread, as ``streaming.gunicorn_worker.SpliceThreadWorker`` (gthread
plus a splice fast path for pipe bodies; see the end of this file). Responses here are
often long-lived (a transcode's stdout, an MJPEG camera, Server-Sent Events), so a worker
must keep serving other requests while some of them go on. The sync worker cannot (one
stream blocks the worker, and it kills any stream that outlives ``--timeout``); gthread
heartbeats from its main loop, so a stream never trips the timeout.

Threads are for work, the event loop for waiting. The worker's main thread runs one
epoll loop, and it holds every connection that only waits: request heads still
arriving (read there, with ``STREAMING_HEADER_TIMEOUT``; a thread gets a connection
only once its head is whole, so clients trickling headers cannot use the threads up),
kept-alive connections between requests, camera viewers (one fan-out per camera per
worker sends each frame to all of them) and render event streams (their polls run as
short tasks on the threads). None of them has a thread.

Threads: 64 per worker. What does need a thread is a request being worked on: a
thumbnail or frame grab in a work slot (``TRANSFORMS_CONCURRENCY``, 2 x cores, and the
requests waiting ``TRANSFORMS_SLOT_WAIT`` for one), a transcode spliced to its client,
a follower of a render in progress, a large file sent to a slow client. 64 leaves room
for dozens of those next to the work slots; raise ``GUNICORN_THREADS`` for a site that
serves many large files to slow clients at once. The worker starts the whole pool when it
starts (``SpliceThreadWorker.get_thread_pool``), so its thread count is the same with no
viewer or 2000 and a crowd arriving together cannot grow it.

Connections: 4096 per worker (``GUNICORN_WORKER_CONNECTIONS``; gunicorn's default is
1000), because viewers and event streams are connections: a worker may hold
``CAMERAS_WORKER_STREAMS`` (2000) camera streams and still take requests. The open-file
limit is raised to fit (one fd per connection) as far as the hard limit allows.
Connections are shared between workers unevenly, so the per-worker cap on streams,
not the deployment total, is what protects a worker; ``CAMERAS_MAX_VIEWERS`` (per
camera, deployment-wide) sits above it.

Every value can be overridden from the environment (GUNICORN_*).
"""

import multiprocessing
import os
import resource
from pathlib import Path

# Metrics of every worker go to one folder (streaming/metrics.py); decided here, before any
# worker starts, so the master and all workers agree on it.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(Path(__file__).resolve().parent.parent / "var" / "metrics"))

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count()))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "streaming.gunicorn_worker.SpliceThreadWorker")
threads = int(os.environ.get("GUNICORN_THREADS", 64))
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", 4096))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 60))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 10))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 5))
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")


def raise_open_file_limit(wanted: int) -> None:
    """Let every worker hold ``worker_connections`` sockets plus its other files (the soft limit is often 1024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


raise_open_file_limit(worker_connections + 1024)  # here, in the master: the workers inherit it


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
    would wait out ``graceful_timeout`` before exiting. Streams the event loop holds end
    (closing boundary first) as soon as the loop sees the stop; this event ends the ones
    a thread serves (under TLS). The handler adds to gunicorn's own (installed before
    this hook runs) and only sets an event.
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
# socket and whose event loop holds what only waits (streaming/gunicorn_worker.py).
# Files go out with sendfile(2): gunicorn's default. Do not set ``sendfile`` here:
# gunicorn's setting exists only to turn it off (``Config.sendfile`` is False whenever
# the setting has any value, True included).
