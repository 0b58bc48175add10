"""The result cache: keys, files, LRU, tee fill, coalescing across gunicorn workers, no partial files."""

from __future__ import annotations

import os
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from streaming.fill import FileFill, TeedPipeline
from streaming.pipeline import Pipeline
from tests.answers import body as read_body
from tests.conftest import children, log_text, start_test_views, wait_until
from tests.fake_tools import COUNTING_TOOL, install_tool, invocations, slow_tool
from tests.media_factory import decode
from tests.raw_http import RawClient, reset
from transforms.cache import MAGIC, RenderLock, ResultCache, cache_key, result_cache

pytestmark = pytest.mark.django_db


def cache_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_keys_change_with_every_ingredient():
    base = ("a.jpg", "100-1", "width=300", "pillow:11", "")
    keys = {cache_key(*base)}
    for index, changed in enumerate(["b.jpg", "100-2", "width=301", "pillow:12", "webp"]):
        parts = list(base)
        parts[index] = changed
        keys.add(cache_key(*parts))
    assert len(keys) == 6
    assert all(len(key) == 32 for key in keys)


def test_entries_are_sharded_files_with_a_header(tmp_path):
    cache = ResultCache(tmp_path, 10**9)
    key = cache_key("x")
    assert cache.store(key, "image/png", b"\x89PNG data")
    path = tmp_path / key[:2] / key[2:4] / key
    assert path.read_bytes() == MAGIC + b"image/png\n\x89PNG data"
    entry = cache.open(key)
    assert (entry.content_type, entry.size) == ("image/png", 9)
    assert os.pread(entry.file.fileno(), entry.size, entry.offset) == b"\x89PNG data"
    entry.file.close()
    assert cache.open(cache_key("other")) is None
    assert cache_files(tmp_path) == [f"{key[:2]}/{key[2:4]}/{key}"]  # no temp or lock file left


def test_least_recently_used_entries_are_evicted_past_the_bound(tmp_path):
    cache = ResultCache(tmp_path, 12_000)
    keys = [cache_key(str(i)) for i in range(5)]
    for age, key in enumerate(keys):
        cache.store(key, "image/jpeg", b"x" * 2000)
        path = cache.path_for(key)
        os.utime(path, ns=(age * 10**9, age * 10**9))  # atime: key 0 is the least recently used
    os.utime(cache.path_for(keys[0]), ns=(time.time_ns(), 0))  # ... until a hit refreshes it
    cache.store(cache_key("new"), "image/jpeg", b"x" * 2000)
    left = {key for key in keys if cache.path_for(key).exists()}
    assert keys[0] in left and keys[1] not in left
    assert cache.stats()["bytes"] <= 10_800 and len(left) == 4


def test_render_lock_is_exclusive_and_cleans_up(tmp_path):
    path = tmp_path / "ab" / "k.lock"
    first = RenderLock.try_acquire(path)
    assert first is not None
    assert RenderLock.try_acquire(path) is None
    first.release()
    first.release()
    assert not path.exists()
    again = RenderLock.try_acquire(path)
    assert again is not None
    again.release()


def test_claim_waits_for_the_holder_then_hits(tmp_path):
    cache = ResultCache(tmp_path, 0)
    key = cache_key("k")
    lock = cache.claim(key, 1)
    assert isinstance(lock, RenderLock)
    assert cache.claim(key, 0.05) is None  # held: gave up waiting
    with ThreadPoolExecutor(1) as pool:
        waiter = pool.submit(cache.claim, key, 10)
        cache.store(key, "text/plain", b"done")
        lock.release()
        entry = waiter.result()
    assert entry.content_type == "text/plain"
    entry.file.close()


def test_file_fill_commits_only_when_whole(tmp_path, tool_children):
    with tool_children():
        good = TeedPipeline(Pipeline([["printf", "hello"]]), FileFill(tmp_path / "good", b"H\n"))
        good.wait_for_output()
        assert b"".join(iter(good.read, b"")) == b"hello"
        good.close()
        assert (tmp_path / "good").read_bytes() == b"H\nhello"
        failing = [sys.executable, "-c", "import sys; print('part'); sys.stdout.flush(); sys.exit(2)"]
        bad = TeedPipeline(Pipeline([failing]), FileFill(tmp_path / "bad"))
        bad.wait_for_output()
        with pytest.raises(Exception, match="exited with status 2"):
            b"".join(iter(bad.read, b""))
        bad.close()
        cut = TeedPipeline(Pipeline([["yes"]]), FileFill(tmp_path / "cut"))
        cut.read(1000)
        cut.close()  # the client left: killed, nothing kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good"]


def test_pillow_results_are_cached_and_served_from_the_cache(client, photos, settings, monkeypatch):
    first = client.get("/hd.jpg?size=200x100&format=webp")
    made = read_body(first)
    entries = list(result_cache().entries())
    assert len(entries) == 1
    monkeypatch.setattr("transforms.delivery.start", lambda *a: pytest.fail("rendered again"))
    hit = client.get("/hd.jpg?size=200x100&format=webp")
    assert hit["Content-Type"] == "image/webp"
    assert read_body(hit) == made
    assert decode(made).size == (178, 100)


def test_failed_renders_leave_nothing(client, media_root, settings):
    (media_root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    response = client.get("/broken.jpg?size=10x10")
    assert response.status_code in (415, 422)
    assert cache_files(Path(settings.TRANSFORMS_CACHE_DIR)) == []


def test_cache_can_be_turned_off(client, photos, settings):
    settings.TRANSFORMS_CACHE = False
    read_body(client.get("/hd.jpg?size=20x20"))
    assert cache_files(Path(settings.TRANSFORMS_CACHE_DIR)) == []


# --- through a real gunicorn -----------------------------------------------------

@pytest.fixture
def counting_tool(tmp_path) -> tuple[Path, bytes]:
    """A tool that logs each run to <tmp>/count and writes out.bin after 0.3 s."""
    data = install_tool(tmp_path, COUNTING_TOOL.format(count=tmp_path / "count", media=tmp_path / "media"))
    return tmp_path / "count", data


def test_twenty_identical_requests_on_two_workers_make_one_render(gunicorn_factory, tmp_path, counting_tool):
    count, data = counting_tool
    server = start_test_views(gunicorn_factory, tmp_path, workers=2, threads=12)
    assert wait_until(lambda: len(server.worker_pids()) == 2)

    def fetch(_: int) -> bytes:
        return requests.get(f"{server.url}/_test/cached/out.bin", timeout=60).content

    with ThreadPoolExecutor(20) as pool:
        bodies = list(pool.map(fetch, range(20)))
    assert all(body == data for body in bodies)
    assert invocations(count) == 1
    log = log_text(tmp_path)
    assert "tee'd them into a file" in log  # the first response filled the cache with tee + splice
    assert log.count("result cache miss") == 1
    entry = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert len(entry) == 1 and entry[0].read_bytes() == MAGIC + b"application/x-test\n" + data
    # hits are files: Range works on them
    part = requests.get(f"{server.url}/_test/cached/out.bin", headers={"Range": "bytes=10-19"}, timeout=10)
    assert part.status_code == 206 and part.content == data[10:20]


def test_twenty_identical_pillow_requests_on_two_workers_render_once(gunicorn_factory, tmp_path):
    from tests import media_factory

    root = tmp_path / "media"
    media_factory.save(media_factory.photo(4000, 3000), root / "big.jpg", quality=90)
    server = gunicorn_factory({"MEDIA_ROOT": str(root)}, workers=2, threads=12)
    assert wait_until(lambda: len(server.worker_pids()) == 2)
    url = f"{server.url}/big.jpg?size=300x200&fit=cover"
    with ThreadPoolExecutor(20) as pool:
        bodies = list(pool.map(lambda _: requests.get(url, timeout=60).content, range(20)))
    assert len(set(bodies)) == 1 and decode(bodies[0]).size == (300, 200)
    assert log_text(tmp_path).count("result cache miss") == 1


def test_a_client_leaving_or_a_failing_tool_leaves_no_partial_entry(gunicorn_factory, tmp_path, counting_tool):
    count, data = counting_tool
    media = tmp_path / "media"
    (media / "huge.bin").write_bytes(os.urandom(40 << 20))
    server = start_test_views(gunicorn_factory, tmp_path)
    worker = server.worker_pids()[0]
    raw = socket.create_connection(("127.0.0.1", server.port))
    raw.sendall(b"GET /_test/cached/huge.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    raw.recv(65536)
    reset(raw)
    assert wait_until(lambda: "client went away" in log_text(tmp_path))
    assert wait_until(lambda: children(worker) == [])
    assert cache_files(tmp_path / "cache") == []
    # a tool that fails after some output: the client sees a truncated body, the cache gets nothing
    (tmp_path / "tool").write_text("#!/bin/sh\nhead -c 100000 /dev/zero\nexit 3\n")
    client = RawClient(server.port)
    client.request("GET", "/_test/cached/out.bin")
    with pytest.raises(EOFError):
        client.response()
    client.close()
    assert wait_until(lambda: "the tool failed" in log_text(tmp_path))
    assert cache_files(tmp_path / "cache") == []
    assert "Traceback" not in log_text(tmp_path)


def test_identical_requests_follow_a_streaming_render_as_it_grows(gunicorn_factory, tmp_path):
    data = slow_tool(tmp_path)
    server = start_test_views(gunicorn_factory, tmp_path, workers=2, threads=12, TRANSFORMS_CACHE_WAIT="1")
    assert wait_until(lambda: len(server.worker_pids()) == 2)
    url = f"{server.url}/_test/cached/out.bin"

    def fetch(delay: float) -> tuple[bytes, float]:
        time.sleep(delay)
        response = requests.get(url, timeout=60)
        return response.content, time.monotonic()

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(fetch, [0] + [0.3 + 0.1 * n for n in range(7)]))
    assert all(body == data for body, _ in results)
    assert invocations(tmp_path / "count") == 1  # nobody gave up after TRANSFORMS_CACHE_WAIT and rendered again
    log = log_text(tmp_path)
    assert log.count("result cache miss") == 1
    assert log.count("following the render") == 7
    leader_done = results[0][1]
    assert all(done - leader_done < 1.0 for _, done in results)  # followers end with the render, not later
    assert leader_done - started < 10
    assert [p for p in (tmp_path / "cache").rglob("*") if p.name.endswith(".tmp")] == []


def test_a_follower_of_a_failing_render_ends_early_too(gunicorn_factory, tmp_path):
    slow_tool(tmp_path, fail=True)
    server = start_test_views(gunicorn_factory, tmp_path)
    leader, follower = RawClient(server.port), RawClient(server.port)
    leader.request("GET", "/_test/cached/out.bin")
    time.sleep(0.5)
    follower.request("GET", "/_test/cached/out.bin")
    for client in (leader, follower):
        with pytest.raises(EOFError):  # a chunked body without its last chunk: visibly incomplete
            client.response()
        client.close()
    log = log_text(tmp_path)
    assert "following the render" in log
    assert wait_until(lambda: "the render this request followed did not finish" in log_text(tmp_path))
    assert "the tool failed" in log_text(tmp_path)
    assert "Traceback" not in log_text(tmp_path)
    assert cache_files(tmp_path / "cache") == []
    assert wait_until(lambda: children(server.worker_pids()[0]) == [])


@pytest.mark.parametrize("splice", ["auto", "off"])
def test_followers_get_the_whole_render_when_the_first_client_leaves(gunicorn_factory, tmp_path, splice):
    """The render keeps going for the requests following it, and its result is cached, once."""
    data = slow_tool(tmp_path)
    server = start_test_views(gunicorn_factory, tmp_path, STREAMING_SPLICE=splice)
    leader = RawClient(server.port)
    leader.request("GET", "/_test/cached/out.bin")
    assert wait_until(lambda: "result cache miss" in log_text(tmp_path))
    time.sleep(0.3)
    follower = RawClient(server.port)
    follower.request("GET", "/_test/cached/out.bin")
    assert wait_until(lambda: "following the render" in log_text(tmp_path))
    leader.sock.recv(65536)
    leader.reset()  # about a third of the way through the render
    status, _, body = follower.response()
    follower.close()
    assert status == 200 and body == data
    log = log_text(tmp_path)
    assert "finishing the render" in log and "client went away" in log
    assert invocations(tmp_path / "count") == 1
    assert wait_until(lambda: len(cache_files(tmp_path / "cache")) == 1)  # published: the next request hits
    again = RawClient(server.port)
    again.request("GET", "/_test/cached/out.bin")
    assert again.response()[2] == data
    again.close()
    assert invocations(tmp_path / "count") == 1
    assert "Traceback" not in log_text(tmp_path)


def test_the_render_stops_when_its_last_follower_leaves_too(gunicorn_factory, tmp_path):
    slow_tool(tmp_path)
    server = start_test_views(gunicorn_factory, tmp_path)
    worker = server.worker_pids()[0]
    leader = RawClient(server.port)
    leader.request("GET", "/_test/cached/out.bin")
    assert wait_until(lambda: "result cache miss" in log_text(tmp_path))
    follower = RawClient(server.port)
    follower.request("GET", "/_test/cached/out.bin")
    assert wait_until(lambda: "following the render" in log_text(tmp_path))
    leader.reset()
    assert wait_until(lambda: "finishing the render" in log_text(tmp_path))
    follower.reset()
    assert wait_until(lambda: "left too: stopping its render" in log_text(tmp_path))
    assert wait_until(lambda: children(worker) == [])  # the tool was killed before its end
    assert cache_files(tmp_path / "cache") == []
    assert "Traceback" not in log_text(tmp_path)


def test_an_unusable_cache_folder_does_not_fail_requests(client, photos, settings, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    settings.TRANSFORMS_CACHE_DIR = blocker / "cache"
    response = client.get("/hd.jpg?size=64x64")
    assert response.status_code == 200
    assert decode(read_body(response)).size == (64, 36)


def test_a_request_that_waited_too_long_renders_for_itself(client, photos, settings):
    from transforms.planning import order_for
    from transforms.sources import opened_image, resolve
    from transforms.spec import parse_query

    settings.TRANSFORMS_CACHE_WAIT = 0.2
    spec = parse_query({"size": ["32x32"]})
    source = resolve("hd.jpg")
    with opened_image(source) as image:
        key = order_for(source, spec, image).key
    held = result_cache().claim(key, 0)
    assert isinstance(held, RenderLock)  # as if another worker were rendering it for a long time
    response = client.get("/hd.jpg?size=32x32")
    assert response.status_code == 200 and decode(read_body(response)).size == (32, 18)
    assert result_cache().open(key) is None  # made uncached: the holder still owns the entry
    held.release()


def test_the_bound_holds_with_several_worker_processes(tmp_path):
    workers = [ResultCache(tmp_path, 20_000), ResultCache(tmp_path, 20_000)]  # one per process
    for index in range(60):
        workers[index % 2].store(cache_key(str(index)), "image/jpeg", b"x" * 1000)
    total = workers[0].stats()["bytes"]
    assert total <= 20_000 * (1 + 2 * 0.1) + 1100, total
    assert workers[0].stats()["entries"] < 60


def _claim_in_another_process(root: str, key: str, queue) -> None:
    claimed = ResultCache(Path(root), 0).claim(key, 30)
    queue.put(type(claimed).__name__)
    if hasattr(claimed, "file"):
        queue.put(claimed.file.read())
        claimed.file.close()


def test_claim_coalesces_across_processes(tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("fork")
    cache = ResultCache(tmp_path, 0)
    key = cache_key("shared")
    lock = cache.claim(key, 1)
    assert isinstance(lock, RenderLock)
    queue = context.Queue()
    other = context.Process(target=_claim_in_another_process, args=(str(tmp_path), key, queue))
    other.start()
    time.sleep(0.3)  # give the other process time to find the lock taken and start waiting
    assert queue.empty()  # it is waiting, not rendering
    cache.store(key, "text/plain", b"rendered once")
    lock.release()
    assert queue.get(timeout=10) == "Entry"
    assert queue.get(timeout=10).endswith(b"rendered once")
    other.join(10)
    assert other.exitcode == 0
