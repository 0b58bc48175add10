"""The service under a real gunicorn on a free loopback port."""

from __future__ import annotations

import socket

import pytest
import requests

from tests import media_factory
from tests.conftest import children, open_fds
from tests.media_factory import decode
from tests.raw_http import leave_mid_body


@pytest.fixture
def server(gunicorn_factory, tmp_path):
    root = tmp_path / "media"
    media_factory.save(media_factory.photo(1920, 1080), root / "hd.jpg", quality=90)
    media_factory.save(media_factory.photo(4000, 3000), root / "big.jpg", quality=90)
    return gunicorn_factory({"MEDIA_ROOT": str(root)})


def test_thumbnail_over_a_real_socket(server):
    response = requests.get(f"{server.url}/hd.jpg?size=300x200&fit=cover", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    image = decode(response.content)
    assert image.size == (300, 200)
    etag = response.headers["ETag"]
    again = requests.get(f"{server.url}/hd.jpg?size=300x200&fit=cover", headers={"If-None-Match": etag}, timeout=10)
    assert again.status_code == 304


def test_errors_over_a_real_socket(server):
    response = requests.get(f"{server.url}/hd.jpg?size=0x0", timeout=10)
    assert response.status_code == 400
    assert response.json()["parameter"] == "size"
    raw = socket.create_connection(("127.0.0.1", server.port))
    raw.sendall(b"GET /../../etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    reply = raw.recv(65536)
    raw.close()
    assert reply.startswith(b"HTTP/1.1 404")


def test_front_page(server):
    response = requests.get(server.url + "/", timeout=10)
    assert response.status_code == 200
    assert 'alt="hd.jpg"' in response.text
    assert "size=240x160" in response.text


def test_clients_that_leave_mid_body_leak_nothing(server):
    worker = server.worker_pids()[0]
    requests.get(f"{server.url}/big.jpg", timeout=10)  # warm up imports and threads
    baseline = open_fds(worker)
    leave_mid_body(server.port, "/big.jpg", times=20, first_bytes=1000)
    assert requests.get(f"{server.url}/hd.jpg?size=10x10", timeout=10).status_code == 200
    assert open_fds(worker) <= baseline + 2
    assert children(worker) == []


def test_front_page_in_a_browser_shows_decoded_thumbnails(server, page, tmp_path):
    page.goto(server.url + "/")
    page.wait_for_function("[...document.images].every(i => i.complete) && document.images.length === 2")
    widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
    assert widths == [240, 240]
    page.screenshot(path=str(tmp_path / "front.png"))
    assert (tmp_path / "front.png").stat().st_size > 1000
