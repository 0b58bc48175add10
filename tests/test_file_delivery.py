"""Originals and cache hits as files: Range (206/416), conditional GET, HEAD; through sendfile under gunicorn."""

from __future__ import annotations

import os
import time

import pytest
import requests
from django.utils.http import http_date

from streaming.ranges import Unsatisfiable, parse_range
from tests.answers import body as read_body

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=990-5000", (990, 999)),
        ("bytes=0-0", (0, 0)),
        ("bytes=0-1,5-9", None),  # several ranges: ignored, whole body
        ("items=0-9", None),
        ("bytes=9-5", None),
        ("bytes=-", None),
        ("garbage", None),
    ],
)
def test_parse_range_table(header, expected):
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_unsatisfiable_ranges(header):
    with pytest.raises(Unsatisfiable):
        parse_range(header, 1000)


@pytest.fixture
def original(media_root):
    data = os.urandom(10_000)
    path = media_root / "clip.bin"
    path.write_bytes(data)
    return data


def test_original_ranges(client, original):
    response = client.get("/clip.bin", HTTP_RANGE="bytes=100-199")
    assert response.status_code == 206
    assert response["Content-Range"] == "bytes 100-199/10000"
    assert response["Content-Length"] == "100"
    assert read_body(response) == original[100:200]
    suffix = client.get("/clip.bin", HTTP_RANGE="bytes=-10")
    assert read_body(suffix) == original[-10:] and suffix["Content-Range"] == "bytes 9990-9999/10000"
    whole = client.get("/clip.bin")
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes"
    assert read_body(whole) == original
    unsatisfiable = client.get("/clip.bin", HTTP_RANGE="bytes=20000-")
    assert unsatisfiable.status_code == 416
    assert unsatisfiable["Content-Range"] == "bytes */10000"
    several = client.get("/clip.bin", HTTP_RANGE="bytes=0-1,5-6")
    assert several.status_code == 200 and read_body(several) == original


def test_if_range(client, original):
    etag = client.get("/clip.bin")["ETag"]
    matching = client.get("/clip.bin", HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=etag)
    assert matching.status_code == 206 and read_body(matching) == original[:10]
    stale = client.get("/clip.bin", HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"other"')
    assert stale.status_code == 200 and read_body(stale) == original


def test_conditional_get_with_past_future_and_garbage_dates(client, original, media_root):
    mtime = (media_root / "clip.bin").stat().st_mtime
    cases = {
        http_date(mtime): 304,
        http_date(mtime + 3600): 304 if mtime + 3600 < time.time() else 200,
        http_date(mtime - 3600): 200,
        "Mon, 01 Jan 1990 00:00:00 GMT": 200,
        http_date(time.time() + 86400 * 365): 200,  # in the future: not a valid date, ignored
        "garbage": 200,
        "": 200,
    }
    for header, status in cases.items():
        response = client.get("/clip.bin", HTTP_IF_MODIFIED_SINCE=header)
        assert response.status_code == status, header
        response.close()
    etag = client.get("/clip.bin")["ETag"]
    assert client.get("/clip.bin", HTTP_IF_NONE_MATCH=etag).status_code == 304
    assert client.get("/clip.bin", HTTP_IF_NONE_MATCH='"nope"').status_code == 200
    # If-None-Match wins over If-Modified-Since
    response = client.get("/clip.bin", HTTP_IF_NONE_MATCH='"nope"', HTTP_IF_MODIFIED_SINCE=http_date(mtime))
    assert response.status_code == 200


def test_head_of_an_original(client, original):
    response = client.head("/clip.bin")
    assert response.status_code == 200
    assert response["Content-Length"] == "10000"
    assert read_body(response) == b""


def test_cache_hits_are_files_with_ranges(client, photos):
    first = client.get("/hd.jpg?size=300x200")
    assert first.status_code == 200 and not first.streaming  # rendered now, bytes
    made = read_body(first)
    hit = client.get("/hd.jpg?size=300x200")
    assert hit.streaming and hit["Accept-Ranges"] == "bytes"
    assert hit["Content-Length"] == str(len(made))
    assert hit["ETag"] == first["ETag"] and hit["Content-Type"] == "image/jpeg"
    assert read_body(hit) == made
    part = client.get("/hd.jpg?size=300x200", HTTP_RANGE="bytes=2-101")
    assert part.status_code == 206 and read_body(part) == made[2:102]
    assert part["Content-Range"] == f"bytes 2-101/{len(made)}"
    assert client.get("/hd.jpg?size=300x200", HTTP_RANGE=f"bytes={len(made)}-").status_code == 416
    head = client.head("/hd.jpg?size=300x200")
    assert head.status_code == 200 and read_body(head) == b""


def test_ranges_and_head_over_gunicorn_sendfile(gunicorn_factory, tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    data = os.urandom(5 << 20)
    (root / "big.bin").write_bytes(data)
    server = gunicorn_factory({"MEDIA_ROOT": str(root)})
    session = requests.Session()
    assert session.get(f"{server.url}/big.bin", timeout=10).content == data
    part = session.get(f"{server.url}/big.bin", headers={"Range": "bytes=1000000-2999999"}, timeout=10)
    assert part.status_code == 206 and part.content == data[1000000:3000000]
    head = session.head(f"{server.url}/big.bin", timeout=10)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(data)) and head.content == b""
    # the connection is still in step after HEAD
    tail = session.get(f"{server.url}/big.bin", headers={"Range": "bytes=-3"}, timeout=10)
    assert tail.content == data[-3:]
    assert session.get(f"{server.url}/big.bin", headers={"Range": "bytes=99999999-"}, timeout=10).status_code == 416
