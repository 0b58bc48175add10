"""The tool engines under a real gunicorn: streamed bodies, clients that leave, deadlines."""

from __future__ import annotations

import os
import socket
import time

import pytest
import requests
from PIL import Image

from tests import media_factory
from tests.conftest import children, open_fds, wait_until
from tests.media_factory import decode
from tests.raw_http import reset


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("media")
    media_factory.save(media_factory.photo(1920, 1080), root / "hd.jpg", quality=90)
    # noise does not compress: an upscaled PNG of it is tens of megabytes, far more than the pipe holds
    noise = Image.frombytes("RGB", (1500, 1000), os.urandom(1500 * 1000 * 3))
    media_factory.save(noise, root / "noise.jpg", quality=95)
    return root


@pytest.fixture
def scratch_root(tmp_path):
    """The server's own TMPDIR, so ImageMagick scratch folders of other processes do not count."""
    root = tmp_path / "server-tmp"
    root.mkdir()
    return root


def scratch_left(root) -> list[str]:
    return [name for name in os.listdir(root) if name.startswith("mediasite-magick-")]


@pytest.fixture
def server(gunicorn_factory, media, scratch_root):
    return gunicorn_factory({"MEDIA_ROOT": str(media), "TMPDIR": str(scratch_root)})


@pytest.mark.parametrize("engine", ["convert", "cjpeg"])
def test_thumbnail_streams_from_the_tool(server, engine):
    worker = server.worker_pids()[0]
    response = requests.get(f"{server.url}/hd.jpg?size=300x200&fit=cover&engine={engine}", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers.get("Transfer-Encoding") == "chunked"  # streamed from the pipe, length unknown
    image = decode(response.content)
    assert image.size == (300, 200) and image.format == "JPEG"
    etag = response.headers["ETag"]
    again = requests.get(f"{server.url}/hd.jpg?size=300x200&fit=cover&engine={engine}",
                         headers={"If-None-Match": etag}, timeout=30)
    assert again.status_code == 304
    assert wait_until(lambda: children(worker) == [])


def test_engine_failure_over_a_real_socket_is_clean_json(server, media):
    media_factory.truncated(media / "hd.jpg", media / "cut.jpg", 0.4)
    for engine in ("convert", "cjpeg"):
        response = requests.get(f"{server.url}/cut.jpg?size=300x200&engine={engine}", timeout=30)
        assert response.status_code == 422
        assert response.json()["engine"] == engine


@pytest.mark.parametrize(
    "query",
    ["size=3000x2000&upscale=1&format=png&engine=convert", "size=4000x3000&upscale=1&quality=100&engine=cjpeg"],
)
def test_client_leaving_mid_body_kills_the_tool_and_leaks_nothing(server, scratch_root, query):
    worker = server.worker_pids()[0]
    assert requests.get(f"{server.url}/hd.jpg?size=10x10&engine=convert", timeout=30).status_code == 200
    baseline = open_fds(worker)

    raw = socket.create_connection(("127.0.0.1", server.port))
    raw.sendall(f"GET /noise.jpg?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    received = b""
    while b"\r\n\r\n" not in received or len(received) < 100_000:
        chunk = raw.recv(65536)
        assert chunk, "the server closed the connection early"
        received += chunk
    assert received.startswith(b"HTTP/1.1 200")
    assert children(worker), "the tool should still be running while the client reads"
    reset(raw)

    assert wait_until(lambda: children(worker) == []), children(worker)
    assert wait_until(lambda: open_fds(worker) <= baseline + 2), (baseline, open_fds(worker))
    # ImageMagick's scratch folder goes last, after the tools are reaped and their pipes closed
    assert wait_until(lambda: scratch_left(scratch_root) == []), scratch_left(scratch_root)
    # the worker still serves
    assert requests.get(f"{server.url}/hd.jpg?size=10x10&engine=cjpeg", timeout=30).status_code == 200


def test_deadline_under_gunicorn(gunicorn_factory, media, scratch_root):
    server = gunicorn_factory({"MEDIA_ROOT": str(media), "TRANSFORMS_DEADLINE": "1", "TMPDIR": str(scratch_root)})
    worker = server.worker_pids()[0]
    started = time.monotonic()
    response = requests.get(f"{server.url}/noise.jpg?size=4000x3000&upscale=1&format=png&engine=convert", timeout=30)
    assert response.status_code == 504
    assert response.json()["error"] == "deadline_exceeded"
    assert time.monotonic() - started < 10
    assert wait_until(lambda: children(worker) == [])
    assert wait_until(lambda: scratch_left(scratch_root) == []), scratch_left(scratch_root)


LOGGING_CONVERT = """#!/bin/sh
echo "$@" >> "{log}"
exec /usr/bin/convert "$@"
"""


def test_a_fresh_worker_starts_no_tool_for_a_cache_hit_or_a_304(gunicorn_factory, media, tmp_path):
    """Engine versions (in every ETag) are probed once when a worker loads the app, never in a request."""
    log = tmp_path / "convert.log"
    wrapper = tmp_path / "convert"
    wrapper.write_text(LOGGING_CONVERT.format(log=log))
    wrapper.chmod(0o755)
    env = {"MEDIA_ROOT": str(media), "TRANSFORMS_CONVERT": str(wrapper)}
    url = "/hd.jpg?size=120x80&engine=convert"
    first = gunicorn_factory(env)
    made = requests.get(first.url + url, timeout=30)
    assert made.status_code == 200 and decode(made.content).size == (120, 68)
    first.stop()

    def calls() -> list[str]:
        return log.read_text().splitlines()

    fresh = gunicorn_factory(env)  # same result cache folder: the entry is there
    assert wait_until(lambda: calls().count("-version") == 2)  # one probe per worker start, before any request
    hit = requests.get(fresh.url + url, timeout=30)
    assert hit.status_code == 200 and hit.content == made.content
    again = requests.get(fresh.url + url, headers={"If-None-Match": made.headers["ETag"]}, timeout=30)
    assert again.status_code == 304
    assert calls().count("-version") == 2 and len(calls()) == 3  # the probes and the one render
