"""Replays: kept responses answered again by the worker's event loop (streaming/replay.py).

Request parsing and the table are checked directly; everything else over a real
gunicorn and raw sockets, counting replays from the worker's debug log.
"""

from __future__ import annotations

import io
import os
import time

import pytest
from PIL import Image

from streaming import replay
from tests import media_factory
from tests.conftest import wait_for
from tests.raw_http import RawClient

THUMB = "/hd.jpg?size=300x200&fit=cover"


# --- parsing and the table ------------------------------------------------------------------

def test_parse_request_keys_on_target_and_relevant_headers():
    plain = replay.parse_request(b"GET /a.jpg?size=3x2 HTTP/1.1\r\nHost: x\r\nUser-Agent: one\r\n\r\n")
    other_agent = replay.parse_request(b"GET /a.jpg?size=3x2 HTTP/1.1\r\nuser-agent: two\r\nhost:  x \r\n\r\n")
    assert plain is not None and other_agent is not None
    assert plain.key == other_agent.key == (b"/a.jpg?size=3x2", (b"HOST", b"x"))
    assert not plain.head_only and plain.if_none_match is None
    head = replay.parse_request(b'HEAD /a.jpg HTTP/1.1\r\nHost: x\r\nIf-None-Match: "t"\r\n\r\n')
    assert head.head_only and head.if_none_match == b'"t"'
    assert head.key == (b"/a.jpg", (b"HOST", b"x"))
    for differs in (b"Host: y", b"Host: x\r\nAccept: image/webp", b"Host: x\r\nCookie: a=1",
                    b"Host: x\r\nX-Forwarded-Proto: https"):
        other = replay.parse_request(b"GET /a.jpg?size=3x2 HTTP/1.1\r\n" + differs + b"\r\n\r\n")
        assert other.key != plain.key
    # behind a proxy every client's request carries its own address: they share the kept response
    relayed = replay.parse_request(b"GET /a.jpg?size=3x2 HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.9\r\n"
                                   b"X-Real-IP: 203.0.113.9\r\n\r\n")
    assert relayed.key == plain.key


@pytest.mark.parametrize("data", [
    b"GET /a HTTP/1.1\r\nHost: x\r\n",  # incomplete
    b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n",  # pipelined
    b"POST /a HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /a HTTP/1.0\r\nHost: x\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: Sat, 21 Nov 2026 10:00:00 GMT\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost : x\r\n\r\n",
    b"GET /a HTTP/1.1\r\nnot a header\r\n\r\n",
    b"GET  /a HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /a HTTP/1.1\r\n" + b"X-Long: " + b"a" * 9000 + b"\r\n\r\n",
])
def test_requests_a_replay_leaves_to_the_app(data):
    assert replay.parse_request(data) is None


def test_if_none_match_is_evaluated_like_the_app():
    entry = replay.Replay(b"", b"", b"", b"", b"", b'"abc"', "/nonexistent", (0, 0, 0, 0), 0.0)
    assert entry.matches_etag(b'"abc"')
    assert entry.matches_etag(b'"x", W/"abc"')
    assert entry.matches_etag(b"*")
    assert not entry.matches_etag(b'"abcd"')


def test_table_is_bounded_and_checks_the_file(tmp_path):
    source = tmp_path / "f"
    source.write_bytes(b"x")
    table = replay.ReplayTable(max_bytes=3000, max_body=1000, ttl=60)

    def entry(body: bytes, path=source) -> replay.Replay:
        return replay.Replay(b"", b"", b"", b"", body, None, str(path), replay.identity_of(str(path)),
                             time.monotonic() + 60)

    assert not table.wants(("big",), 1001)
    table.keep(("a",), entry(b"1" * 900))
    table.keep(("b",), entry(b"2" * 900))
    table.keep(("c",), entry(b"3" * 900))  # evicts the oldest
    assert table.find(("a",)) is None and table.find(("c",)).body == b"3" * 900
    assert table.bytes <= 3000 and len(table) == 2
    os.utime(source, ns=(1, 1))  # the file changed: its replays are dropped
    assert table.find(("c",)) is None and len(table) == 1
    table.keep(("d",), replay.Replay(b"", b"", b"", b"", b"", None, str(source), replay.identity_of(str(source)),
                                      time.monotonic() - 1))
    assert table.find(("d",)) is None  # expired
    assert table.wants(("d",), 10)


# --- over gunicorn ----------------------------------------------------------------------------

@pytest.fixture
def served(gunicorn_factory, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    media_factory.save(media_factory.photo(1920, 1080), media / "hd.jpg", quality=90)
    media_factory.save(media_factory.photo(640, 480), media / "other.jpg", quality=90)
    server = gunicorn_factory({"MEDIA_ROOT": str(media), "GUNICORN_LOGLEVEL": "debug"}, workers=1)
    return server, media, tmp_path


def replays(tmp_path) -> int:
    return sum(p.read_text(errors="replace").count("replayed a kept response") for p in tmp_path.glob("gunicorn-*.log"))


def get(client: RawClient, target: str, headers: str = "", method: str = "GET"):
    client.request(method, target, headers=headers)
    return client.response(head=method == "HEAD")


def kept(client: RawClient, target: str) -> tuple[int, dict[str, str], bytes]:
    """Render once (a miss), hit once through Django (which keeps it): the next one is a replay."""
    first = get(client, target)
    assert first[0] == 200
    second = get(client, target)
    assert second[0] == 200 and second[2] == first[2]
    return second


def test_a_cache_hit_is_replayed_byte_for_byte_with_the_apps_headers(served):
    server, _, logs = served
    client = RawClient(server.port)
    status, headers, body = kept(client, THUMB)
    assert replays(logs) == 0
    for _ in range(5):
        again = get(client, THUMB)
        assert again[0] == 200 and again[2] == body
        assert {k: v for k, v in again[1].items() if k != "date"} == {k: v for k, v in headers.items() if k != "date"}
    assert replays(logs) == 5
    with Image.open(io.BytesIO(body)) as image:
        assert image.size == (300, 200) and image.format == "JPEG"
    assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"


def test_head_and_if_none_match_are_answered_and_the_connection_stays_usable(served):
    server, _, logs = served
    client = RawClient(server.port)
    _, headers, body = kept(client, THUMB)
    status, head_headers, head_body = get(client, THUMB, method="HEAD")
    assert status == 200 and head_body == b"" and head_headers["content-length"] == str(len(body))
    status, not_modified, _ = get(client, THUMB, headers=f"If-None-Match: {headers['etag']}\r\n")
    assert status == 304
    assert not_modified["etag"] == headers["etag"] and "content-type" not in not_modified
    assert "content-length" not in not_modified
    status, _, again = get(client, THUMB, headers='If-None-Match: "another"\r\n')
    assert status == 200 and again == body
    assert replays(logs) == 3
    status, _, again = get(client, THUMB)  # the connection is still in step after HEAD and 304
    assert status == 200 and again == body


def test_a_changed_replaced_or_deleted_source_goes_back_to_the_app(served):
    server, media, logs = served
    client = RawClient(server.port)
    _, headers, body = kept(client, THUMB)
    source = media / "hd.jpg"
    media_factory.save(media_factory.photo(1920, 1080).transpose(Image.Transpose.ROTATE_180), source, quality=90)
    status, changed_headers, changed = get(client, THUMB)
    assert status == 200 and changed != body and changed_headers["etag"] != headers["etag"]
    get(client, THUMB)
    served_before = replays(logs)
    os.rename(media / "other.jpg", source)  # replaced by another file
    status, _, replaced = get(client, THUMB)
    assert status == 200 and replaced not in (body, changed)
    assert replays(logs) == served_before
    source.unlink()
    status, error, _ = get(client, THUMB)
    assert status == 404 and error["content-type"] == "application/json"


def test_a_retargeted_symlink_goes_back_to_the_app(served):
    server, media, logs = served
    link = media / "link.jpg"
    link.symlink_to("hd.jpg")
    client = RawClient(server.port)
    _, _, body = kept(client, "/link.jpg?size=120x80")
    assert get(client, "/link.jpg?size=120x80")[2] == body and replays(logs) == 1
    link.unlink()
    link.symlink_to("other.jpg")
    status, _, retargeted = get(client, "/link.jpg?size=120x80")
    assert status == 200 and retargeted != body and replays(logs) == 1


def test_other_hosts_accept_headers_and_ranges_are_decided_by_the_app(served):
    server, _, logs = served
    client = RawClient(server.port)
    kept(client, THUMB)
    client.sock.sendall(f"GET {THUMB} HTTP/1.1\r\nHost: evil.example\r\n\r\n".encode())
    status, _, _ = client.response()
    assert status == 400  # ALLOWED_HOSTS, checked by Django, not skipped by a replay
    auto = "/hd.jpg?size=300x200&format=auto"
    kept(client, auto)
    webp = get(client, auto, headers="Accept: image/webp,*/*\r\n")
    jpeg = get(client, auto, headers="Accept: image/jpeg\r\n")
    assert webp[1]["content-type"] == "image/webp" and webp[1]["vary"] == "Accept"
    assert jpeg[1]["content-type"] == "image/jpeg"
    status, ranged, part = get(client, THUMB, headers="Range: bytes=0-9\r\n")
    assert status == 206 and len(part) == 10 and ranged["content-range"].startswith("bytes 0-9/")
    assert replays(logs) == 0


def test_pipelined_requests_are_answered_in_order(served):
    server, _, logs = served
    client = RawClient(server.port)
    _, _, body = kept(client, THUMB)
    other = get(client, "/hd.jpg?size=50x50")[2]
    one = f"GET {THUMB} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    two = "GET /hd.jpg?size=50x50 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    client.sock.sendall((one + two + one).encode())
    assert [client.response()[2] for _ in range(3)] == [body, other, body]


def test_a_body_bigger_than_the_socket_takes_is_finished_by_a_thread(gunicorn_factory, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    data = os.urandom(6 << 20)  # more than a socket's send buffer can grow to (tcp_wmem: 4 MiB)
    (media / "blob.bin").write_bytes(data)
    server = gunicorn_factory({"MEDIA_ROOT": str(media), "GUNICORN_LOGLEVEL": "debug",
                               "STREAMING_REPLAY_MAX_BODY": str(8 << 20), "STREAMING_REPLAY_BYTES": str(32 << 20)})
    client = RawClient(server.port)
    assert get(client, "/blob.bin")[2] == data  # a small-enough original is kept at once
    for _ in range(3):
        client.request("GET", "/blob.bin")
        time.sleep(0.2)  # the socket takes what it can; a thread sends the rest
        status, _, body = client.response()
        assert status == 200 and body == data
    assert replays(tmp_path) == 3
    status, headers, _ = get(client, "/blob.bin", method="HEAD")  # still in step afterwards
    assert status == 200 and headers["content-length"] == str(len(data))


def test_replays_can_be_turned_off_and_write_access_log_lines(gunicorn_factory, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    media_factory.save(media_factory.photo(1920, 1080), media / "hd.jpg", quality=90)
    off = gunicorn_factory({"MEDIA_ROOT": str(media), "GUNICORN_LOGLEVEL": "debug", "STREAMING_REPLAY_BYTES": "0"})
    client = RawClient(off.port)
    for _ in range(4):
        assert get(client, THUMB)[0] == 200
    assert replays(tmp_path) == 0
    logged = gunicorn_factory({"MEDIA_ROOT": str(media), "GUNICORN_ACCESSLOG": "-", "GUNICORN_LOGLEVEL": "debug"})
    client = RawClient(logged.port)
    for _ in range(4):
        assert get(client, THUMB, headers="User-Agent: replay-test\r\n")[0] == 200
    assert replays(tmp_path) == 3  # the cache is shared with the first server: a kept hit, three replays

    def access_lines() -> list[str]:
        log = (tmp_path / "gunicorn-1.log").read_text()
        return [line for line in log.splitlines() if THUMB in line and '" 200 ' in line]

    lines = wait_for(lambda: len(access_lines()) == 4 and access_lines())
    assert all("replay-test" in line and "127.0.0.1" in line for line in lines)


def test_a_client_that_leaves_after_asking_does_not_hurt_the_worker(served):
    server, _, logs = served
    client = RawClient(server.port)
    _, _, body = kept(client, THUMB)
    for _ in range(50):
        gone = RawClient(server.port)
        kept_now = get(gone, THUMB)[2]
        assert kept_now == body
        gone.sock.sendall(f"GET {THUMB} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        gone.reset()  # maybe before the answer is written
    assert get(client, THUMB)[2] == body
    assert server.process.poll() is None and len(server.worker_pids()) == 1
