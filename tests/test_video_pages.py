"""The front page's clip thumbnails, the player page, and the demo clip."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command

from tests import media_factory


@pytest.fixture
def library(media_root: Path) -> Path:
    media_factory.clip(media_root / "clips" / "clip.mp4", seconds=2)
    media_factory.save(media_factory.photo(320, 180), media_root / "photo.jpg", quality=90)
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "sine=duration=1", str(media_root / "a.mp3")],
        check=True, timeout=30,
    )  # fmt: skip
    return media_root


def test_front_page_shows_clips_with_a_frame_grab_and_a_player_link(client, library):
    html = client.get("/").content.decode()
    assert 'alt="clips/clip.mp4"' in html
    assert "/clips/clip.mp4?fit=cover&amp;format=webp&amp;frame=1&amp;size=240x160" in html
    assert 'href="/play/clips/clip.mp4"' in html
    assert 'href="/play/a.mp3"' in html
    assert 'alt="photo.jpg"' in html


def test_player_page(client, library):
    response = client.get("/play/clips/clip.mp4")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<video id="player"' in html
    assert 'data-hls="/clips/clip.mp4?format=hls&amp;sig=' in html
    assert 'data-mp4="/clips/clip.mp4?format=mp4&amp;size=1280x720&amp;sig=' in html
    assert 'data-webm="/clips/clip.mp4?format=webm&amp;size=1280x720&amp;sig=' in html
    assert 'data-storyboard="/clips/clip.mp4?storyboard=160x90&amp;sig=' in html
    audio = client.get("/play/a.mp3").content.decode()
    assert '<audio id="player"' in audio and "format=m4a" in audio and 'data-hls="/a.mp3?format=hls' in audio


@pytest.mark.parametrize("path", ["/play/missing.mp4", "/play/photo.jpg", "/play/../etc/passwd"])
def test_player_page_refuses_what_is_not_a_clip(client, library, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


def test_demo_media_makes_a_clip(media_root):
    call_command("demo_media", stdout=open("/dev/null", "w"))  # noqa: SIM115
    clip = media_root / "demo-clip-720p.mp4"
    report = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(clip)],
        capture_output=True, check=True, timeout=30,
    ).stdout)  # fmt: skip
    video = next(s for s in report["streams"] if s["codec_type"] == "video")
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 1280, 720)
    assert any(s["codec_type"] == "audio" for s in report["streams"])
    assert abs(float(report["format"]["duration"]) - 10) < 0.1
    assert not [p for p in media_root.iterdir() if p.name.endswith(".partial")]


def test_player_plays_hls_seeks_cold_and_previews_in_a_browser(gunicorn_factory, page, tmp_path, long_clip):
    """Chromium on a cold cache: the duration is right at once, a seek to 75% plays on from there
    within 3 s (one segment made for it), and hovering the seek bar shows a tile whose URL answers."""
    import os

    import requests

    root = tmp_path / "media"
    root.mkdir()
    os.link(long_clip, root / "long.mp4")
    server = gunicorn_factory({"MEDIA_ROOT": str(root), "TRANSFORMS_CONCURRENCY": "6"})

    page.goto(server.url + "/")
    page.wait_for_function("[...document.images].length === 1 && [...document.images].every(i => i.complete)")
    size = page.eval_on_selector("img", "i => [i.naturalWidth, i.naturalHeight]")
    assert size == [240, 160]  # {% picture %}'s 1x candidate

    page.goto(server.url + "/play/long.mp4")
    page.wait_for_function("document.getElementById('player').readyState >= 1", timeout=10000)
    state = page.eval_on_selector("#player", "v => ({duration: v.duration, src: v.currentSrc, error: v.error})")
    assert page.text_content("#delivery") == "hls" and "format=hls" in state["src"]
    assert abs(state["duration"] - 600) < 1 and state["error"] is None
    page.eval_on_selector("#player", "v => { v.currentTime = v.duration * 0.75; }")
    page.wait_for_function("(v => v.currentTime >= 450.2 && !v.paused)(document.getElementById('player'))",
                           timeout=3000)

    bar = page.locator("#seekbar").bounding_box()
    page.wait_for_timeout(300)  # the storyboard track arrives with the page
    page.mouse.move(bar["x"] + bar["width"] * 0.5, bar["y"] + bar["height"] / 2)
    page.wait_for_function("!document.getElementById('preview').hidden"
                           " && document.getElementById('preview-image').dataset.src", timeout=3000)
    tile = page.eval_on_selector("#preview-image",
                                 "i => ({src: i.dataset.src, at: getComputedStyle(i).backgroundPosition})")
    assert tile["at"] == "0px -450px"  # 300 s in, 6 s a tile: tile 50 of the 10x10 sheet
    response = requests.get(server.url + tile["src"], timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/jpeg"
