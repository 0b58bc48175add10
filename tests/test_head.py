"""HEAD of any transform, over a real gunicorn and a strict HTTP client: the headers a GET would
send, no tool started, nothing left for the following GET to join, no body-on-HEAD warnings."""

from __future__ import annotations

import pytest

from tests import media_factory
from tests.conftest import children, log_text, wait_until
from tests.h11_client import StrictClient

# (target, content type, the first bytes of a good body)
UNCACHED = [
    ("/photo.jpg?size=120x80", "image/jpeg", b"\xff\xd8"),
    ("/photo.png?size=200x&engine=convert", "image/png", b"\x89PNG"),
    ("/photo.jpg?size=64x&engine=cjpeg", "image/jpeg", b"\xff\xd8"),
    ("/clip.mp4?size=x90", "video/mp4", b"\x00\x00\x00"),
    ("/clip.mp4?format=webm&size=x90", "video/webm", b"\x1a\x45\xdf\xa3"),
    ("/clip.mp4?format=gif&size=80x&duration=1", "image/gif", b"GIF89a"),
    ("/clip.mp4?frame=auto&size=80x", "image/jpeg", b"\xff\xd8"),
    ("/clip.mp4?format=mp3", "audio/mpeg", b""),
    ("/clip.mp4?format=hls", "application/vnd.apple.mpegurl", b"#EXTM3U"),
    ("/clip.mp4?format=hls&rendition=180&segment=init", "video/mp4", b"\x00\x00\x00"),
    ("/clip.mp4?format=hls&rendition=180&segment=1", "video/mp4", b"\x00\x00"),
    ("/clip.mp4?storyboard=80x", "text/vtt; charset=utf-8", b"WEBVTT"),
    ("/clip.mp4?storyboard=80x&sheet=0", "image/jpeg", b"\xff\xd8"),
]
# Written for each request (nothing runs), never cached.
TEXT = ("/clip.mp4?format=hls", "/clip.mp4?storyboard=80x")


@pytest.fixture
def server(gunicorn_factory, tmp_path):
    media = tmp_path / "media"
    media_factory.clip(media / "clip.mp4", seconds=8, size="320x180")
    media_factory.save(media_factory.photo(640, 480), media / "photo.jpg", quality=90)
    media_factory.save(media_factory.photo(640, 480), media / "photo.png")
    return gunicorn_factory({"MEDIA_ROOT": str(media), "LOG_LEVEL": "INFO", "TRANSFORMS_CONCURRENCY": "4"})


def test_head_then_get_on_uncached_transforms_of_each_kind(server, tmp_path):
    client = StrictClient(server.port)
    worker = server.worker_pids()[0]
    for target, content_type, magic in UNCACHED:
        status, head, nothing = client.request("HEAD", target)
        assert (status, head["content-type"], nothing) == (200, content_type, b""), target
        assert not children(worker), f"HEAD {target} started a tool"
        status, got, data = client.request("GET", target)  # h11 raises if the body is cut short
        assert status == 200 and data.startswith(magic) and len(data) > 100, target
        assert {k: v for k, v in head.items() if k not in ("date", "content-length")} == {
            k: v for k, v in got.items() if k not in ("date", "content-length", "transfer-encoding")}, target
        if "content-length" in head:  # known without making it: a playlist or a track
            assert target in TEXT and int(head["content-length"]) == len(data)
        status, cached, nothing = client.request("HEAD", target)
        assert status == 200 and nothing == b"", target
        assert int(cached.get("content-length", len(data))) == len(data), target
    client.close()
    assert wait_until(lambda: children(worker) == [])
    log = log_text(tmp_path)
    assert log.count("result cache miss") == len(UNCACHED) - len(TEXT)  # one render per GET, none per HEAD
    assert "following the render" not in log and "ended early" not in log
    assert "no-body" not in log and "Traceback" not in log


def test_head_of_refusals_and_originals_has_no_body(server, tmp_path):
    client = StrictClient(server.port)
    for target, status in (("/clip.mp4?format=hls&rendition=2160", 404), ("/photo.jpg?size=0x0", 400),
                           ("/photo.jpg", 200), ("/play/clip.mp4", 200)):  # fmt: skip
        got, headers, nothing = client.request("HEAD", target)
        assert (got, nothing) == (status, b""), target
        assert int(headers["content-length"]) > 0, target  # the length the GET's body has
        assert client.request("GET", target)[0] == status
    client.close()
    assert "no-body" not in log_text(tmp_path)
