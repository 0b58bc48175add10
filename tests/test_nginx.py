"""The service behind a real nginx running the shipped site file (deploy/nginx/mediasite.conf).

What a plain proxy config loses, checked through this one: replays (HTTP/1.1 keepalive to
gunicorn), streams passed on as they come (X-Accel-Buffering: no from the app), Range, the
admin's CSRF check on a non-default port (Host $http_host), and live MJPEG and SSE.
"""

from __future__ import annotations

import http.client
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlparse

import pytest
import requests

from tests import media_factory
from tests.conftest import Gunicorn, RedisServer, children, wait_for
from tests.deployment import NGINX, Nginx
from tests.render_helpers import long_recipe
from tests.render_stack import AUTH, Stack, Workers, build_stack

pytestmark = pytest.mark.skipif(not os.path.exists(NGINX), reason="nginx-light is not installed (bin/install --test)")


@dataclass
class Proxied:
    stack: Stack
    nginx: Nginx

    @property
    def gunicorn(self) -> Gunicorn:
        return self.stack.server

    def replays(self) -> int:
        return (self.stack.logs / "gunicorn.log").read_text().count("replayed a kept response")


@pytest.fixture(scope="module")
def proxied(tmp_path_factory) -> Iterator[Proxied]:
    base = tmp_path_factory.mktemp("nginx")
    redis = RedisServer(base)
    stack = build_stack(base, redis, threads=16, TRANSFORMS_CACHE_DIR=str(base / "cache"), GUNICORN_LOGLEVEL="debug")
    media_factory.save(media_factory.photo(1600, 1200), stack.media / "big.jpg", quality=90)
    media_factory.clip(stack.media / "hd.mp4", seconds=4, size="1280x720", fps=24)
    nginx = Nginx(base / "nginx", stack.server.port)
    workers = Workers(stack)
    workers.start()
    yield Proxied(stack, nginx)
    workers.stop_all()
    nginx.stop()
    stack.server.stop()
    redis.stop()


def first_byte(url: str) -> tuple[float, http.client.HTTPResponse]:
    """Seconds to the first body byte of a GET, and the response, the rest of its body unread."""
    parsed = urlparse(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    started = time.monotonic()
    connection.request("GET", f"{parsed.path}?{parsed.query}")
    response = connection.getresponse()
    assert response.status == 200
    assert response.read(1)
    return time.monotonic() - started, response


def test_thumbnails_and_replayed_hits(proxied):
    url = f"{proxied.nginx.url}/big.jpg?size=300x200&fit=cover"
    made = requests.get(url, timeout=30)
    assert made.status_code == 200 and media_factory.decode(made.content).size == (300, 200)
    before = proxied.replays()
    for _ in range(30):  # new client connections each time: nginx reuses its kept-alive upstream ones
        assert requests.get(url, timeout=30).content == made.content
    assert proxied.replays() - before >= 28  # answered by the worker's event loop, not Django


def test_range_passes_through(proxied):
    whole = (proxied.stack.media / "big.jpg").read_bytes()
    part = requests.get(f"{proxied.nginx.url}/big.jpg", headers={"Range": "bytes=10-109"}, timeout=30)
    assert part.status_code == 206 and part.content == whole[10:110]
    assert part.headers["Content-Range"] == f"bytes 10-109/{len(whole)}"


def test_a_transcode_streams_through_without_buffering(proxied):
    worker = proxied.gunicorn.worker_pids()[0]
    direct, response = first_byte(f"{proxied.gunicorn.url}/hd.mp4?size=x720&quality=60")
    response.read()
    wait_for(lambda: children(worker) == [])  # that ffmpeg is done: any child now is the next one's
    proxied_seconds, response = first_byte(f"{proxied.nginx.url}/hd.mp4?size=x720&quality=61")
    assert children(worker), "the first bytes came while ffmpeg still ran: nothing buffered them"
    assert response.getheader("X-Accel-Buffering") is None  # nginx consumes it
    assert proxied_seconds < 2 * direct + 0.25, (proxied_seconds, direct)
    rest = response.read()
    assert len(rest) > 10_000


def test_mjpeg_frames_arrive(proxied):
    with requests.get(f"{proxied.nginx.url}/cameras/demo/stream.mjpg", stream=True, timeout=30) as stream:
        assert stream.status_code == 200
        seen = b""
        for chunk in stream.iter_content(65536):
            seen += chunk
            if seen.count(b"--frame\r\n") >= 6:
                break
    assert seen.count(b"Content-Type: image/jpeg") >= 5


def test_render_events_arrive_live(proxied):
    task = requests.post(f"{proxied.nginx.url}/api/renders/", json=long_recipe(30), headers=AUTH, timeout=10)
    assert task.status_code == 202, task.text
    task_id = task.json()["task_id"]
    events = requests.get(f"{proxied.nginx.url}/api/renders/{task_id}/events", headers=AUTH, stream=True, timeout=30)
    lines = events.iter_lines()
    wait_for(lambda: b'"status":"processing"' in next(lines), timeout=60)
    canceled = time.monotonic()
    assert requests.post(f"{proxied.nginx.url}/api/renders/{task_id}/cancel", headers=AUTH, timeout=10).ok
    wait_for(lambda: b'"status":"canceled"' in next(lines), timeout=30)
    assert time.monotonic() - canceled < 10  # it came while the stream was open, not at its end
    events.close()


def test_admin_login_and_post_on_a_non_default_port(proxied):
    origin = proxied.nginx.url  # http://127.0.0.1:<port>: the port must reach Django for the CSRF check
    with requests.Session() as browser:
        login = browser.get(f"{origin}/admin/login/", timeout=10)
        token = login.text.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
        signed_in = browser.post(f"{origin}/admin/login/?next=/admin/", headers={"Origin": origin},
                                 data={"username": "staff", "password": "staff-pass", "csrfmiddlewaretoken": token},
                                 allow_redirects=False, timeout=10)
        assert signed_in.status_code == 302, signed_in.text[:500]
        posted = browser.post(f"{origin}/api/renders/", json=long_recipe(1), timeout=10,
                              headers={"Origin": origin, "X-CSRFToken": browser.cookies["csrftoken"]})
        assert posted.status_code == 202, posted.text[:500]
