"""Shared pieces of the render tests: source media, recipes, ffprobe, an in-process worker, the admin form."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

from tests import media_factory
from tests.conftest import _cmdline, children

TOKEN = "test-render-token"


def make_sources(root: Path) -> None:
    """A 2 s clip with sound, a photo and a 1 s tone, all small."""
    media_factory.clip(root / "clips" / "intro.mp4", seconds=2, size="320x180", fps=15)
    media_factory.save(media_factory.photo(480, 320), root / "photo.jpg", quality=85)
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=220:duration=1", "-c:a", "libmp3lame", str(root / "music.mp3")],
                   check=True, timeout=60)


def small_recipe(fmt: str = "mp4") -> dict:
    """About 2.6 s at 320x180, 15 fps: a video, a zooming still, a title card, crossfades, music."""
    return {
        "size": [320, 180], "fps": 15, "format": fmt,
        "clips": [
            {"video": "clips/intro.mp4", "start": 0.5, "end": 1.7},
            {"image": "photo.jpg", "duration": 1, "zoom": 1.2},
            {"title": "Hello", "duration": 0.8, "font_size": 28, "color": "#ffff00", "background": "#202060"},
        ],
        "crossfade": 0.2,
        "audio": {"source": "music.mp3", "volume": 0.5, "loop": True},
    }


def long_recipe(seconds: int = 20) -> dict:
    """A still that zooms for ``seconds`` (tiny frames, but long enough to stop mid-way)."""
    return {"size": [320, 180], "fps": 12, "clips": [{"image": "photo.jpg", "duration": seconds, "zoom": 1.5}],
            "audio": {"source": "music.mp3", "loop": True}}


def ffprobe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type,codec_name,width,height",
         "-of", "json", str(path)],
        check=True, capture_output=True, timeout=30,
    ).stdout
    return json.loads(out)


def ffmpeg_processes(pid: int) -> list[int]:
    """Descendants of ``pid`` that are ffmpeg (zombies included: their cmdline is empty, so check stat)."""
    found = []
    for child in children(pid):
        try:
            with open(f"/proc/{child}/stat") as stat:
                name = stat.read().split("(", 1)[1].split(")", 1)[0]
        except OSError:
            continue
        if "ffmpeg" in name or "ffmpeg" in _cmdline(child):
            found.append(child)
    return found


def closed_port_url() -> str:
    """A Redis URL nothing listens on: Redis down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def run_worker() -> None:
    """Run every queued render job in this process (rq's SimpleWorker, burst mode)."""
    from rq import SimpleWorker

    from transforms.renders import redis_queue

    SimpleWorker([redis_queue.render_queue()], connection=redis_queue.redis_connection()).work(burst=True)


def admin_form(clips: list[dict], button: str = "_saveandstart", **fields) -> dict:
    """The POST of the admin's render editor, as a person fills it: top fields, then one row per clip."""
    data = {
        "editor": "form", "size_preset": "custom", "width": 320, "height": 180, "fps": 12, "format": "mp4",
        "crossfade": 0, "audio_source": "", "audio_volume": 1, "audio_start": 0, "recipe_json": "",
        "clips-TOTAL_FORMS": len(clips), "clips-INITIAL_FORMS": 0, "clips-MIN_NUM_FORMS": 0,
        "clips-MAX_NUM_FORMS": 1000, button: "1",
    }
    for index, clip in enumerate(clips):
        kind = next(kind for kind in ("video", "image", "title") if kind in clip)
        data[f"clips-{index}-kind"] = kind
        data[f"clips-{index}-ORDER"] = index + 1
        data.update({f"clips-{index}-{key}": value for key, value in clip.items()})
    data.update(fields)
    return data
