"""Video results through the result cache: a live transcode has no ranges, a cached one does."""

from __future__ import annotations

import pytest

from tests import media_factory
from tests.test_video import body, probe, streams

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

    monkeypatch.setattr("transforms.views.render_media", refuse)
    again = client.get("/clip.mp4?frame=1&size=80x")
    assert again.status_code == 200 and body(again) == data
