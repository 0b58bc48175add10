"""Cameras end to end: real gunicorn, real Redis, real ffmpeg, a real HTTP client and Chromium."""

from __future__ import annotations

import http.server
import io
import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests import media_factory
from tests.camera_helpers import camera_threads, counter, ffmpegs, open_stream, stopped, worker_fds
from tests.conftest import free_port, wait_for, wait_until
from tests.media_factory import decode
from tests.mjpeg_client import MjpegReader


def test_stream_frames_are_jpegs_in_order_at_the_requested_rate(cameras):
    server = cameras("demo=emulated?size=320x240&fps=20", CAMERAS_MAX_VIEWERS="3")
    base = f"{server.url}/cameras/demo"
    with open_stream(f"{base}/stream.mjpg") as response:
        assert response.headers["Cache-Control"].startswith("no-store")
        parts = MjpegReader(response).take(20)
        status = requests.get(f"{base}/status.json", timeout=10).json()
    images = [decode(part.body) for part in parts]
    assert all(image.format == "JPEG" and image.size == (320, 240) for image in images)
    assert all(int(part.headers["content-length"]) == len(part.body) for part in parts)
    seqs = [part.seq for part in parts]
    assert seqs == sorted(set(seqs))
    assert len({image.tobytes() for image in images}) == len(images)  # every frame is new
    native = (len(parts) - 1) / (parts[-1].received - parts[0].received)
    assert 8 < native < 40  # about 20 fps; loose, the machine is shared
    assert status["state"] == "running" and status["viewers"] >= 1 and status["name"] == "demo"

    with open_stream(f"{base}/stream.mjpg?fps=4") as response:
        capped = MjpegReader(response).take(6)
    rate = (len(capped) - 1) / (capped[-1].received - capped[0].received)
    assert 2 < rate < 6
    assert all(b.seq - a.seq >= 2 for a, b in zip(capped[1:], capped[2:], strict=False))  # skipped, not queued

    snapshot = requests.get(f"{base}/snapshot.jpg", timeout=10)
    assert snapshot.status_code == 200 and snapshot.headers["Content-Type"] == "image/jpeg"
    assert decode(snapshot.content).size == (320, 240)

    page = requests.get(f"{base}/", timeout=10)
    assert page.status_code == 200 and 'src="/cameras/demo/stream.mjpg"' in page.text
    index = requests.get(f"{server.url}/cameras/", timeout=10)
    assert index.status_code == 200 and "/cameras/demo/stream.mjpg?fps=2" in index.text


def test_bad_requests_and_the_viewer_limit(cameras):
    server = cameras("demo=emulated?size=160x120&fps=10", CAMERAS_MAX_VIEWERS="2")
    base = f"{server.url}/cameras"
    for path in ["nope/stream.mjpg", "nope/snapshot.jpg", "nope/status.json"]:
        response = requests.get(f"{base}/{path}", timeout=10)
        assert response.status_code == 404
        assert response.json()["error"] == "unknown_camera" and response.json()["cameras"] == ["demo"]
    page = requests.get(f"{base}/nope/", timeout=10)
    assert page.status_code == 404 and "no camera named" in page.text
    for query, parameter in [("fps=0", "fps"), ("fps=abc", "fps"), ("fps=1000", "fps"), ("size=10", "size")]:
        response = requests.get(f"{base}/demo/stream.mjpg?{query}", timeout=10)
        assert response.status_code == 400 and response.json()["parameter"] == parameter
    assert requests.options(f"{base}/demo/stream.mjpg", timeout=10).status_code == 405
    head = requests.head(f"{base}/demo/stream.mjpg", timeout=10)
    assert head.status_code == 200 and head.headers["Content-Type"].startswith("multipart/x-mixed-replace")

    first, second = open_stream(f"{base}/demo/stream.mjpg"), open_stream(f"{base}/demo/stream.mjpg")
    refused = requests.get(f"{base}/demo/stream.mjpg", timeout=10)
    assert refused.status_code == 503 and int(refused.headers["Retry-After"]) > 0
    assert refused.json()["error"] == "too_many_viewers"
    first.close()
    second.close()
    third = wait_for(lambda: (r := requests.get(f"{base}/demo/stream.mjpg", stream=True, timeout=10)).ok and r)
    assert decode(MjpegReader(third).take(1)[0].body).size == (160, 120)
    third.close()


def test_the_viewer_limit_holds_for_a_burst_across_workers(cameras):
    """Ten viewers at once over two workers, limit three: exactly three get a stream.

    Each admission checks every worker's published count and publishes its own in one
    Redis step, so two workers cannot both admit against counts from before the burst.
    """
    server = cameras("demo=emulated?size=160x120&fps=10", workers=2, threads=64, CAMERAS_MAX_VIEWERS="3")
    assert wait_until(lambda: len(server.worker_pids()) == 2)
    url = f"{server.url}/cameras/demo/stream.mjpg"
    barrier = threading.Barrier(10)
    answers: list[requests.Response] = []

    def ask() -> None:
        barrier.wait()
        answers.append(requests.get(url, stream=True, timeout=30))

    threads = [threading.Thread(target=ask) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200] * 3 + [503] * 7
        refusals = [answer.json()["error"] for answer in answers if answer.status_code == 503]
        assert refusals == ["too_many_viewers"] * 7, refusals
        counts = cameras.redis.hgetall("mediasite:cameras:demo:viewers")
        assert sum(int(value.split()[0]) for value in counts.values()) == 3
    finally:
        for answer in answers:
            answer.close()


def watch(url: str, count: int, results: list, errors: list) -> None:
    try:
        with requests.get(url, stream=True, timeout=30) as response:
            assert response.status_code == 200, response.text
            parts = MjpegReader(response).take(count)
            for part in parts:
                decode(part.body)
            results.append([part.seq for part in parts])
    except Exception as exc:  # reported by the test thread
        errors.append(exc)


def twenty_viewers(server, client, name: str) -> dict:
    """20 viewers at once; while they watch, count producers and ffmpegs. Returns what was seen."""
    url = f"{server.url}/cameras/{name}/stream.mjpg"
    results, errors = [], []
    threads = [threading.Thread(target=watch, args=(url, 30, results, errors)) for _ in range(20)]
    for thread in threads:
        thread.start()
    seen = {"producers": set(), "threads": set(), "ffmpegs": set(), "workers": set()}
    while any(thread.is_alive() for thread in threads):
        seen["producers"].add(counter(client, name, "producers"))
        seen["threads"].add(camera_threads(server, "producer"))
        seen["ffmpegs"].add(len(ffmpegs(server)))
        seen["workers"].update(w for w in client.hkeys(f"mediasite:cameras:{name}:viewers"))
        time.sleep(0.1)
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 20 and all(seqs == sorted(set(seqs)) for seqs in results)
    return seen


def test_two_workers_twenty_viewers_one_producer_and_no_leaks(cameras):
    clip = media_factory.clip(cameras.root / "clips" / "loop.mp4", seconds=1, size="320x180", fps=15, audio=False)
    assert clip.is_file()
    server = cameras("loop=file:clips/loop.mp4", workers=2, threads=64)
    client = cameras.redis
    workers = wait_for(lambda: len(pids := server.worker_pids()) == 2 and pids)

    seen = twenty_viewers(server, client, "loop")
    assert seen["producers"] <= {0, 1} and 1 in seen["producers"]
    assert seen["threads"] <= {0, 1} and 1 in seen["threads"]  # producer threads across both workers
    assert seen["ffmpegs"] <= {0, 1} and 1 in seen["ffmpegs"]
    assert counter(client, "loop", "starts") == 1
    wait_for(lambda: stopped(client, "loop", server))  # idle timeout after the last viewer; no camera threads
    assert client.get("mediasite:cameras:loop:lease") is None
    fds = {pid: worker_fds(pid, cameras.redis_port)[0] for pid in workers}

    again = twenty_viewers(server, client, "loop")
    assert again["producers"] <= {0, 1} and again["threads"] <= {0, 1} and again["ffmpegs"] <= {0, 1}
    assert counter(client, "loop", "starts") == 2
    wait_for(lambda: stopped(client, "loop", server))
    assert len(seen["workers"] | again["workers"]) == 2  # both workers had viewers, one producer served them
    for pid in workers:
        other, to_redis = worker_fds(pid, cameras.redis_port)
        assert other <= fds[pid], "fd leak in a worker"
        assert to_redis <= 16  # streaming.cameras.bus.POOL_SIZE


def test_failing_device_gives_a_clean_error_and_leaves_no_ffmpeg(cameras, page):
    server = cameras("broken=v4l2:///dev/video-missing")
    base = f"{server.url}/cameras/broken"
    response = requests.get(f"{base}/stream.mjpg", timeout=30)
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    body = response.json()
    assert body["error"] == "camera_unavailable" and "/dev/video-missing" in body["message"]
    assert "No such file" in body["message"]
    assert requests.get(f"{base}/snapshot.jpg", timeout=30).status_code == 503
    wait_for(lambda: stopped(cameras.redis, "broken", server))

    page.goto(f"{base}/", wait_until="domcontentloaded")
    page.wait_for_function(
        "document.getElementById('problem').textContent.includes('No such file')", timeout=20000
    )
    assert "/dev/video-missing" in page.text_content("#problem")
    page.close()
    wait_for(lambda: stopped(cameras.redis, "broken", server))


def test_source_dying_mid_stream_ends_the_stream_and_restarts(cameras):
    media_factory.clip(cameras.root / "loop.mp4", seconds=1, size="320x180", fps=15, audio=False)
    server = cameras("loop=file:loop.mp4")
    base = f"{server.url}/cameras/loop"
    with open_stream(f"{base}/stream.mjpg") as response:
        reader = MjpegReader(response)
        assert len(reader.take(3)) == 3
        (first_ffmpeg,) = ffmpegs(server)
        os.kill(first_ffmpeg, signal.SIGKILL)
        list(reader)  # ends: no hang
        assert reader.closed_cleanly
    wait_for(lambda: requests.get(f"{base}/status.json", timeout=5).json()["state"] == "running")
    assert "ffmpeg exited with status -9" in requests.get(f"{base}/status.json", timeout=5).json()["last_error"]
    with open_stream(f"{base}/stream.mjpg") as response:
        parts = MjpegReader(response).take(3)
        assert ffmpegs(server) and ffmpegs(server) != [first_ffmpeg]
    assert all(decode(part.body).size == (320, 180) for part in parts)
    wait_for(lambda: stopped(cameras.redis, "loop", server))


def test_real_clip_in_a_loop(cameras, shared_media):
    real = shared_media / "real" / "moviepy__big_buck_bunny_432_433.webm"
    if not real.is_file():
        pytest.skip("the real clip is not in ../shared/media")
    shutil.copy(real, cameras.root / "bunny.webm")
    server = cameras("bunny=file:bunny.webm")
    with open_stream(f"{server.url}/cameras/bunny/stream.mjpg") as response:
        parts = MjpegReader(response).take(30)  # more frames than the 1 s clip has: it loops
    images = [decode(part.body) for part in parts]
    assert {image.size for image in images} == {(1280, 720)}
    assert [part.seq for part in parts] == sorted({part.seq for part in parts})
    wait_for(lambda: stopped(cameras.redis, "bunny", server))


class MjpegCameraHandler(http.server.BaseHTTPRequestHandler):
    """An IP camera on loopback: an endless multipart MJPEG stream of numbered frames."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=ipcam")
        self.end_headers()
        index = 0
        try:
            while not self.server.stopping.is_set():
                image = Image.new("RGB", (176, 144), ((index * 37) % 256, 80, 160))
                out = io.BytesIO()
                image.save(out, "JPEG")
                data = out.getvalue()
                self.wfile.write(b"--ipcam\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(data))
                self.wfile.write(data + b"\r\n")
                self.wfile.flush()
                index += 1
                time.sleep(0.1)
        except OSError:
            pass

    def log_message(self, *args) -> None:
        pass


def test_http_mjpeg_camera_on_loopback(cameras):
    ipcam = http.server.ThreadingHTTPServer(("127.0.0.1", 0), MjpegCameraHandler)
    ipcam.daemon_threads = True
    ipcam.stopping = threading.Event()
    threading.Thread(target=ipcam.serve_forever, daemon=True).start()
    try:
        server = cameras(f"ipcam=http://127.0.0.1:{ipcam.server_address[1]}/video.mjpg")
        with open_stream(f"{server.url}/cameras/ipcam/stream.mjpg") as response:
            parts = MjpegReader(response).take(5)
        images = [decode(part.body) for part in parts]
        assert {image.size for image in images} == {(176, 144)}
        assert len({image.getpixel((5, 5)) for image in images}) > 1  # the remote frames change
        wait_for(lambda: stopped(cameras.redis, "ipcam", server))
    finally:
        ipcam.stopping.set()
        ipcam.shutdown()
        ipcam.server_close()


def test_camera_page_shows_a_moving_image(cameras, page, tmp_path: Path):
    server = cameras("demo=emulated?size=320x240&fps=10")
    page.goto(f"{server.url}/cameras/demo/", wait_until="domcontentloaded")
    page.wait_for_function("document.getElementById('live').naturalWidth === 320", timeout=20000)
    def shot() -> bytes:
        return Image.open(io.BytesIO(page.locator("#live").screenshot())).tobytes()

    first = shot()
    assert any(shot() != first for _ in range(50)), "the image did not change"  # stops at the first change
    page.wait_for_function("document.getElementById('state').textContent === 'running'", timeout=10000)
    page.wait_for_function("parseFloat(document.getElementById('fps').textContent) > 0", timeout=10000)
    page.wait_for_function("document.getElementById('viewers').textContent !== '0'", timeout=10000)
    page.close()
    wait_for(lambda: stopped(cameras.redis, "demo", server))


def test_a_viewer_that_stops_reading_is_dropped_and_others_keep_their_rate(cameras):
    server = cameras("demo=emulated?size=640x480&fps=20", CAMERAS_SEND_TIMEOUT="1", GUNICORN_TIMEOUT="2")
    base = f"{server.url}/cameras/demo"
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(("127.0.0.1", server.port))
    stuck.sendall(b"GET /cameras/demo/stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # and never reads
    try:
        with open_stream(f"{base}/stream.mjpg") as response:
            reader = MjpegReader(response)
            parts = reader.take(10)
            assert requests.get(f"{server.url}/cameras/", timeout=10).status_code == 200  # not starved
            wait_for(lambda: requests.get(f"{base}/status.json", timeout=5).json()["viewers"] == 2)
            # the stuck viewer is dropped once its socket has refused data for CAMERAS_SEND_TIMEOUT
            wait_for(lambda: requests.get(f"{base}/status.json", timeout=5).json()["viewers"] == 1, timeout=30)
            parts += reader.take(40)  # the healthy viewer streamed on, past the worker timeout (2 s)
        seqs = [part.seq for part in parts]
        assert seqs == sorted(set(seqs)) and len(seqs) == 50
        assert parts[-1].received - parts[0].received > 2
    finally:
        stuck.close()
    wait_for(lambda: stopped(cameras.redis, "demo", server))


def test_redis_unreachable_gives_503_not_500(gunicorn_factory, tmp_path):
    server = gunicorn_factory({"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "CAMERAS": "demo=emulated",
                               "MEDIA_ROOT": str(tmp_path)})
    for path in ["stream.mjpg", "snapshot.jpg", "status.json"]:
        response = requests.get(f"{server.url}/cameras/demo/{path}", timeout=20)
        assert response.status_code == 503 and response.json()["error"] == "relay_unavailable"
        assert response.headers["Retry-After"]
    page = requests.get(f"{server.url}/cameras/demo/", timeout=20)
    assert page.status_code == 200 and "unreachable" in page.text


def test_graceful_stop_ends_streams_cleanly_instead_of_waiting_out_the_grace_period(cameras):
    server = cameras("demo=emulated?size=160x120&fps=10", GUNICORN_GRACEFUL_TIMEOUT="60")
    with open_stream(f"{server.url}/cameras/demo/stream.mjpg") as response:
        reader = MjpegReader(response)
        assert len(reader.take(3)) == 3
        server.process.terminate()  # SIGTERM: what a deploy or reload sends
        list(reader)
        assert reader.closed_cleanly
    server.process.wait(timeout=30)  # well inside the 60 s grace period: nothing waited it out
    assert counter(cameras.redis, "demo", "producers") == 0
