"""Video over a real gunicorn: a fragmented MP4 plays before it has finished streaming,
and a client that leaves takes ffmpeg with it."""

from __future__ import annotations

import json
import socket
import subprocess

import pytest
import requests

from tests import media_factory
from tests.conftest import _cmdline, children, open_fds, wait_until
from tests.raw_http import reset


@pytest.fixture
def server(gunicorn_factory, tmp_path):
    root = tmp_path / "media"
    media_factory.clip(root / "long.mp4", seconds=30, size="640x360")
    (root / "text.mp4").write_bytes(b"not a video at all\n")
    media_factory.clip(root / "cut.mp4", seconds=1, size="320x180")
    data = (root / "cut.mp4").read_bytes()
    (root / "cut.mp4").write_bytes(data[: len(data) // 3])
    return gunicorn_factory({"MEDIA_ROOT": str(root)})


def ffmpegs(worker: int) -> list[int]:
    return [pid for pid in children(worker) if "ffmpeg" in _cmdline(pid)]


def open_stream(server, path: str) -> tuple[socket.socket, bytes, bytes]:
    """GET over HTTP/1.0 (no chunked framing) with a small receive window, so the server cannot
    push the whole transcode into socket buffers: returns the socket, headers and first body bytes."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", server.port))
    sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, "the server closed before sending headers"
        received += chunk
    headers, _, body = received.partition(b"\r\n\r\n")
    return sock, headers, body


def test_fragmented_mp4_plays_while_it_is_still_streaming(server, tmp_path):
    worker = server.worker_pids()[0]
    assert requests.get(f"{server.url}/long.mp4?frame=1&size=32x", timeout=30).status_code == 200  # warm up
    baseline = open_fds(worker)

    sock, headers, head = open_stream(server, "/long.mp4?format=mp4&quality=100")
    try:
        assert headers.startswith(b"HTTP/1.0 200") or headers.startswith(b"HTTP/1.1 200")
        lowered = headers.lower()
        assert b"content-type: video/mp4" in lowered
        assert b"accept-ranges: none" in lowered
        assert b"content-length" not in lowered
        while len(head) < 200_000:
            chunk = sock.recv(65536)
            assert chunk, "the transcode ended before 200 KB"
            head += chunk
        assert ffmpegs(worker), "ffmpeg should still be running: the response is not finished"

        partial = tmp_path / "head.mp4"
        partial.write_bytes(head)
        report = json.loads(subprocess.run(
            ["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of", "json", str(partial)],
            capture_output=True, check=True, timeout=30,
        ).stdout)  # fmt: skip
        video = next(s for s in report["streams"] if s["codec_type"] == "video")
        assert video["codec_name"] == "h264"
        assert (video["width"], video["height"]) == (640, 360)
        assert int(video["nb_read_frames"]) >= 24  # at least a second of pictures decodes already
        assert any(s["codec_type"] == "audio" and s["codec_name"] == "aac" for s in report["streams"])
        assert ffmpegs(worker), "still streaming after the player read the first bytes"
    finally:
        reset(sock)

    assert wait_until(lambda: children(worker) == []), f"ffmpeg left behind: {children(worker)}"
    assert wait_until(lambda: open_fds(worker) <= baseline + 2), (open_fds(worker), baseline)


def test_webm_streams_and_a_departed_client_stops_ffmpeg(server):
    worker = server.worker_pids()[0]
    sock, headers, head = open_stream(server, "/long.mp4?format=webm&size=x360")
    try:
        assert b"content-type: video/webm" in headers.lower()
        while len(head) < 4:
            head += sock.recv(65536)
        assert head[:4] == b"\x1a\x45\xdf\xa3"  # EBML: a WebM header arrived first
    finally:
        reset(sock)
    assert wait_until(lambda: children(worker) == []), f"ffmpeg left behind: {children(worker)}"


def test_bad_requests_over_a_real_socket(server):
    worker = server.worker_pids()[0]
    for path in ("/text.mp4?size=64x", "/cut.mp4?frame=0.5", "/long.mp4?frame=31", "/long.mp4?format=png"):
        response = requests.get(server.url + path, timeout=30)
        assert response.status_code == 422, path
        assert response.headers["Content-Type"] == "application/json"
        assert response.json()["message"]
        assert wait_until(lambda: children(worker) == [])
