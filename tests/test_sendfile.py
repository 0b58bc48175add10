"""Files leave the worker with sendfile(2): originals, Range answers and cache hits, seen with strace.

gunicorn's own ``sendfile`` setting only turns it off (any value, True included, means
off), which a config once set without anyone noticing: this test watches the syscalls.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time

import pytest
import requests

from tests import media_factory
from tests.conftest import stop_process, wait_until

SYSCALL = re.compile(r"^(?:\d+ +)?(\w+)\(.*\) = (\d+)$")


def traced_calls(trace) -> list[tuple[str, int]]:
    return [(m.group(1), int(m.group(2))) for line in trace.read_text().splitlines() if (m := SYSCALL.match(line))]


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_originals_ranges_and_cache_hits_go_out_with_sendfile(gunicorn_factory, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    photo = media_factory.save(media_factory.photo(1600, 1200), media / "photo.jpg", quality=95)
    size = photo.stat().st_size
    # replays off: a replayed hit is sent from memory on purpose (streaming/replay.py)
    server = gunicorn_factory({"MEDIA_ROOT": str(media), "STREAMING_REPLAY_BYTES": "0"})
    thumbnail = requests.get(f"{server.url}/photo.jpg?size=200x150", timeout=30)
    assert thumbnail.status_code == 200  # made now; the next one is a cache hit

    trace = tmp_path / "strace.txt"
    tracer = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=sendfile,sendto,write,writev", "-o", str(trace),
                               "-p", str(server.worker_pids()[0])])
    try:
        assert wait_until(lambda: trace.exists())
        time.sleep(0.5)  # attached to every thread
        original = requests.get(f"{server.url}/photo.jpg", timeout=30)
        part = requests.get(f"{server.url}/photo.jpg", headers={"Range": "bytes=100-1099"}, timeout=30)
        hit = requests.get(f"{server.url}/photo.jpg?size=200x150", timeout=30)
    finally:
        stop_process(tracer, 5)
    assert original.content == photo.read_bytes()
    assert part.status_code == 206 and part.content == photo.read_bytes()[100:1100]
    assert hit.content == thumbnail.content

    calls = traced_calls(trace)
    sent_by_sendfile = sum(count for name, count in calls if name == "sendfile")
    assert sent_by_sendfile == size + 1000 + len(thumbnail.content), calls
    copied = [count for name, count in calls if name != "sendfile"]
    assert copied and max(copied) < 4096, calls  # status lines and headers only, never a body
