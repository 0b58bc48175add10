"""manage.py transforms_cache: --stats, --purge, --warm (pool, failures, Ctrl-C with nothing half-written)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests import media_factory
from tests.conftest import PROJECT
from tests.media_factory import decode
from transforms.cache import MAGIC
from transforms.engines.base import CommandEngine

pytestmark = pytest.mark.django_db


def entries(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file() and not p.name.startswith(".") and "." not in p.name]


def body_of(entry: Path) -> bytes:
    data = entry.read_bytes()
    assert data.startswith(MAGIC)
    return data.split(b"\n", 1)[1]


def test_warm_stats_and_purge(photos, settings, capsys):
    cache = Path(settings.TRANSFORMS_CACHE_DIR)
    (photos["hd"].parent / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(CommandError, match="2 render"):
        call_command("transforms_cache", "--warm", "size=300x200,size=x120&fit=cover&format=webp", "--jobs", "2")
    out = capsys.readouterr().out
    assert "failed: broken.jpg:" in out
    assert "8 made" in out and "2 failed" in out
    made = entries(cache)
    assert len(made) == 8
    sizes = sorted(decode(body_of(entry)).size for entry in made)
    assert (300, 169) in sizes and (213, 120) in sizes  # hd.jpg, 1920x1080
    # warming again finds everything cached; a path argument limits the work
    call_command("transforms_cache", "--warm", "size=300x200", "hd.jpg")
    assert "1 cached" in capsys.readouterr().out
    call_command("transforms_cache", "--stats")
    stats = capsys.readouterr().out
    assert "entries: 8" in stats and "temp_files: 0" in stats
    call_command("transforms_cache", "--purge")
    assert "removed 8 file(s)" in capsys.readouterr().out
    assert entries(cache) == []


def test_a_bad_spec_is_refused(photos):
    with pytest.raises(CommandError, match="size"):
        call_command("transforms_cache", "--warm", "size=0x0")


def test_ctrl_c_stops_cleanly_with_nothing_half_written(tmp_path):
    media = tmp_path / "media"
    first = media_factory.save(media_factory.photo(2400, 1600), media / "a000.jpg", quality=90)
    for index in range(1, 150):
        shutil.copyfile(first, media / f"a{index:03}.jpg")
    cache = tmp_path / "cache"
    env = {**os.environ, "MEDIA_ROOT": str(media), "TRANSFORMS_CACHE_DIR": str(cache)}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "transforms_cache", "--warm", "size=300x200,size=x120&fit=cover"],
        cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (cache.exists() and entries(cache)):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, (out, err)
    assert b"interrupted" in err
    made = entries(cache)
    assert 0 < len(made) < 300
    assert [p.name for p in cache.rglob("*") if p.is_file() and p not in made] == []  # no temp, no lock file
    for entry in made:
        assert decode(body_of(entry)).size in ((300, 200), (180, 120))


class CatEngine(CommandEngine):
    """A stand-in tool engine (the real convert/cjpeg engines live elsewhere): ``cat`` of the source."""

    name = "convert"
    input_formats = frozenset({"jpeg", "png"})
    output_formats = frozenset({"jpeg", "png"})

    def commands(self, job) -> list[list[str]]:
        return [["cat"]]

    def tools(self) -> list[str]:
        return ["cat"]


def test_tool_engine_results_stream_into_the_cache_and_warm_in_threads(client, photos, settings, monkeypatch,
                                                                       capsys, tool_children):
    from transforms.engines import ENGINES

    monkeypatch.setitem(ENGINES, "convert", CatEngine())
    cache = Path(settings.TRANSFORMS_CACHE_DIR)
    original = photos["small"].read_bytes()
    with tool_children():
        response = client.get("/small.jpg?engine=convert&size=10x10")
        assert response.streaming and response["Accept-Ranges"] == "none"  # streamed from the tool
        assert b"".join(response.streaming_content) == original
        response.close()
        assert [body_of(entry) for entry in entries(cache)] == [original]  # filled while streaming
        hit = client.get("/small.jpg?engine=convert&size=10x10", HTTP_RANGE="bytes=0-9")
        assert hit.status_code == 206 and b"".join(hit.streaming_content) == original[:10]
        hit.close()
        call_command("transforms_cache", "--warm", "engine=convert&size=20x20", "small.jpg", "pic.png")
    assert "2 made" in capsys.readouterr().out
    assert sorted(body_of(entry) for entry in entries(cache)) == sorted(
        [original, original, photos["png"].read_bytes()])
