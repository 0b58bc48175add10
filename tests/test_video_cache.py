"""Video results through the result cache: a live transcode has no ranges, a cached one does."""

from __future__ import annotations

import pytest

from tests import media_factory
from tests.answers import body
from tests.test_video import probe, streams

pytestmark = pytest.mark.django_db


@pytest.fixture
def clip(media_root):
    return media_factory.clip(media_root / "clip.mp4", seconds=2, fps=12)


def test_a_cached_transcode_is_served_as_a_file_with_ranges(client, clip, tmp_path, private_result_cache):
    url = "/clip.mp4?format=webm&size=160x90"
    live = client.get(url)
    assert live.status_code == 200
    assert live["Accept-Ranges"] == "none"
    whole = body(live)
    report = probe(whole, tmp_path)
    assert streams(report, "video")[0]["codec_name"] == "vp9"
    assert any(private_result_cache.rglob("*")), "the live transcode filled the cache"

    cached = client.get(url)
    assert cached.status_code == 200
    assert cached["Accept-Ranges"] == "bytes"
    assert body(cached) == whole

    part = client.get(url, HTTP_RANGE="bytes=100-199")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 100-199/{len(whole)}"
    assert body(part) == whole[100:200]


def test_a_cached_frame_grab_needs_no_ffmpeg(client, clip, monkeypatch):
    first = client.get("/clip.mp4?frame=1&size=80x")
    data = body(first)
    assert first["Content-Type"] == "image/jpeg"

    def refuse(*args, **kwargs):
        raise AssertionError("ffmpeg started for a cached frame")

    monkeypatch.setattr("transforms.delivery.start", refuse)
    again = client.get("/clip.mp4?frame=1&size=80x")
    assert again.status_code == 200 and body(again) == data


def test_identical_transcodes_under_gunicorn_run_ffmpeg_once_and_follow_it(gunicorn_factory, tmp_path):
    """Viewers who ask while a transcode runs follow its cache file as it grows: one ffmpeg for all."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    import requests

    media = tmp_path / "media"
    media_factory.clip(media / "long.mp4", seconds=8, size="640x360", fps=24)
    server = gunicorn_factory({"MEDIA_ROOT": str(media), "LOG_LEVEL": "INFO"}, workers=2, threads=12)
    url = f"{server.url}/long.mp4?format=mp4&size=x240"

    def fetch(delay: float) -> bytes:
        time.sleep(delay)
        response = requests.get(url, timeout=120)
        assert response.status_code == 200 and response.headers["Accept-Ranges"] == "none"
        return response.content

    with ThreadPoolExecutor(4) as pool:
        bodies = list(pool.map(fetch, [0, 0.4, 0.5, 0.6]))
    assert len(set(bodies)) == 1
    report = probe(bodies[0], tmp_path)
    assert streams(report, "video")[0]["height"] == 240
    assert abs(float(report["format"]["duration"]) - 8) < 0.3
    log = "".join(p.read_text(errors="replace") for p in tmp_path.glob("gunicorn-*.log"))
    assert log.count("result cache miss") == 1
    assert log.count("following the render") >= 1  # the transcode takes longer than 0.4 s
    assert "rendering uncached" not in log and "Traceback" not in log
