"""Camera viewers held by the worker's event loop, seen through raw sockets: real gunicorn, Redis, Pillow.

A viewer costs no thread: hundreds watch a worker of four threads, whose thread count
(from /proc) stays where it was. Slow viewers skip frames, stuck ones are dropped after the
send timeout, vanishing ones are cleaned up, and none of them slows the others; a stop ends
every stream with its closing boundary. Frames are small (160x120) where only the count matters.
"""

from __future__ import annotations

import time

import requests

from tests.answers import machine_samples, total
from tests.camera_helpers import worker_fds
from tests.conftest import wait_for
from tests.loop_clients import Crowd, MjpegViewer, threads_of
from tests.media_factory import decode


def viewers_seen(server, camera: str) -> int:
    return requests.get(f"{server.url}/cameras/{camera}/status.json", timeout=10).json()["viewers"]


def metric(name: str, **labels: str) -> float:
    return total(machine_samples(), name, **labels)


def increasing(seqs: list[int]) -> bool:
    return seqs == sorted(set(seqs))


def test_500_viewers_on_a_four_thread_worker_hold_no_thread(cameras):
    server = cameras("tiny=emulated?size=160x120&fps=15", threads=4, CAMERAS_MAX_VIEWERS="1000")
    (worker,) = wait_for(server.worker_pids)
    first = Crowd([MjpegViewer(server.port, "tiny")])
    assert first.pump(30, until=lambda: len(first.readers[0].seqs) >= 3)
    threads, fds = threads_of(worker), worker_fds(worker, cameras.redis_port)[0]  # the pool is started whole

    viewers = [MjpegViewer(server.port, "tiny") for _ in range(500)]
    crowd = Crowd(viewers)
    assert crowd.pump(90, until=lambda: all(len(viewer.seqs) >= 5 for viewer in viewers))
    assert threads_of(worker) <= threads  # 501 viewers of a 4-thread worker: not one thread more
    assert all(viewer.status == 200 and increasing(viewer.seqs) for viewer in viewers)
    assert {decode(viewer.last_jpeg).size for viewer in viewers[::50]} == {(160, 120)}
    assert wait_for(lambda: viewers_seen(server, "tiny") == 501)  # and a request is answered meanwhile
    assert metric("mediasite_camera_viewers", camera="tiny") == 501
    assert metric("mediasite_bytes_sent_total", path="loop") > 0

    for index, viewer in enumerate(viewers):  # half vanish (RST), half leave properly
        crowd.drop(viewer)
        viewer.reset() if index % 2 else viewer.close()
    assert wait_for(lambda: viewers_seen(server, "tiny") == 1)
    assert wait_for(lambda: worker_fds(worker, cameras.redis_port)[0] <= fds)
    assert metric("mediasite_camera_viewers", camera="tiny") == 1
    assert threads_of(worker) <= threads
    first.pump(1)
    assert not first.readers[0].eof and len(first.readers[0].seqs) > 5  # the first viewer watched on throughout
    first.close()


def test_slow_stuck_and_vanishing_viewers_leave_the_fast_ones_at_full_rate(cameras):
    server = cameras("demo=emulated?size=640x480&fps=15", CAMERAS_SEND_TIMEOUT="2")
    (worker,) = wait_for(server.worker_pids)
    fast = [MjpegViewer(server.port, "demo", rcvbuf=1 << 21) for _ in range(3)]
    crowd = Crowd(fast)
    assert crowd.pump(30, until=lambda: all(len(viewer.seqs) >= 3 for viewer in fast))
    fds = worker_fds(worker, cameras.redis_port)[0]

    stuck = MjpegViewer(server.port, "demo", rcvbuf=4096)  # asks, then never reads
    slow = MjpegViewer(server.port, "demo", rcvbuf=4096)  # reads 4 KB every 0.1 s: under a frame a second
    vanishing = MjpegViewer(server.port, "demo", rcvbuf=4096)
    assert Crowd([vanishing]).pump(20, until=lambda: vanishing.received > 1000)  # into its first frame...
    vanishing.reset()  # ...and gone
    for viewer in fast:
        viewer.seqs.clear()
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        crowd.pump(0.1)
        slow.receive()
    assert wait_for(lambda: viewers_seen(server, "demo") == 4)  # the stuck and the vanished ones are gone

    for viewer in fast:  # every frame, in order: nobody held them up
        assert increasing(viewer.seqs) and len(viewer.seqs) >= 0.9 * (viewer.seqs[-1] - viewer.seqs[0] + 1)
    assert not slow.eof and increasing(slow.seqs) and len(slow.seqs) >= 2
    assert max(b - a for a, b in zip(slow.seqs, slow.seqs[1:], strict=False)) > 1  # it skipped to newer frames
    assert decode(slow.last_jpeg).size == (640, 480)
    for viewer in (slow, stuck):
        viewer.reset()
    assert wait_for(lambda: worker_fds(worker, cameras.redis_port)[0] <= fds)
    crowd.close()


def test_a_stop_ends_every_stream_with_its_closing_boundary(cameras):
    server = cameras("demo=emulated?size=160x120&fps=10", GUNICORN_GRACEFUL_TIMEOUT="60")
    viewers = [MjpegViewer(server.port, "demo", query="?fps=5" if index % 3 == 0 else "") for index in range(30)]
    crowd = Crowd(viewers)
    assert crowd.pump(30, until=lambda: all(len(viewer.seqs) >= 2 for viewer in viewers))
    server.process.terminate()  # SIGTERM: what a deploy or a reload sends
    assert crowd.pump(20, until=lambda: all(viewer.eof for viewer in viewers))
    assert all(viewer.closed_cleanly and viewer.terminated for viewer in viewers)  # boundary, then the last chunk
    server.process.wait(timeout=20)  # well inside the 60 s grace period
    crowd.close()


def test_without_the_splice_worker_the_stream_is_the_generator_it_was(client, redis_url, settings, media_root):
    """The Django test client, like runserver or any other server, reads the same body piece by piece."""
    from streaming.cameras import producer
    from streaming.cameras.mjpeg import CONTENT_TYPE

    settings.CAMERAS = "plain=emulated?size=160x120&fps=15"
    settings.CAMERAS_IDLE_TIMEOUT = 0.5
    response = client.get("/cameras/plain/stream.mjpg")
    try:
        assert response.status_code == 200 and response["Content-Type"] == CONTENT_TYPE
        chunks = iter(response.streaming_content)
        parts = [next(chunks) for _ in range(3)]
    finally:
        response.close()
        producer.stop_all()
    seqs = []
    for part in parts:
        head, _, rest = part.partition(b"\r\n\r\n")
        fields = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
        assert head.startswith(b"--frame\r\n") and decode(rest[:int(fields["Content-Length"])]).size == (160, 120)
        seqs.append(int(fields["X-Frame-Seq"]))
    assert increasing(seqs)
