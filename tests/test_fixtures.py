"""The shared fixtures themselves work: a private Redis, and generated clips."""

import json
import subprocess

import redis

from tests import media_factory


def test_private_redis_is_empty_and_private(redis_url):
    client = redis.Redis.from_url(redis_url)
    assert client.dbsize() == 0
    client.set("k", "v")
    assert client.get("k") == b"v"
    assert not redis_url.endswith(":6379/0")


def test_generated_clip_is_real(tmp_path):
    path = media_factory.clip(tmp_path / "c.mp4", seconds=1.0)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True, check=True, text=True,
    )
    info = json.loads(probe.stdout)
    kinds = sorted(stream["codec_type"] for stream in info["streams"])
    assert kinds == ["audio", "video"]
    assert abs(float(info["format"]["duration"]) - 1.0) < 0.1
