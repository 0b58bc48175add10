"""The splice gunicorn worker over real sockets: framing, keep-alive, HEAD, stalls, failures, disconnects."""

from __future__ import annotations

import os
import socket
import time

import pytest

from tests.conftest import children, log_text, open_fds, start_test_views, wait_until
from tests.raw_http import RawClient, leave_mid_body


@pytest.fixture
def blob(tmp_path) -> bytes:
    root = tmp_path / "media"
    root.mkdir(exist_ok=True)
    data = os.urandom(3 << 20) + b"tail"
    (root / "blob.bin").write_bytes(data)
    return data


@pytest.mark.parametrize("mode", ["os", "ctypes"])
def test_chunked_length_and_close_delimited_framing_with_keepalive(gunicorn_factory, tmp_path, blob, mode):
    server = start_test_views(gunicorn_factory, tmp_path, STREAMING_SPLICE=mode)
    client = RawClient(server.port)
    client.request("GET", "/_test/cat/blob.bin")
    status, headers, body = client.response()
    assert status == 200 and headers["transfer-encoding"] == "chunked"
    assert body == blob
    # the same connection serves the next request: a known Content-Length this time
    client.request("GET", "/_test/cat/blob.bin?length=1")
    status, headers, body = client.response()
    assert headers["content-length"] == str(len(blob)) and "transfer-encoding" not in headers
    assert body == blob
    # and a third: a file (sendfile), proving the connection is still in step
    client.request("GET", "/blob.bin")
    status, headers, body = client.response()
    assert status == 200 and body == blob
    client.close()
    # HTTP/1.0: close-delimited
    old = RawClient(server.port)
    old.request("GET", "/_test/cat/blob.bin", version="1.0")
    status, headers, body = old.response()
    assert "content-length" not in headers and "transfer-encoding" not in headers
    assert body == blob
    old.close()
    log = log_text(tmp_path)
    binding = {"os": "os_splice", "ctypes": "ctypes_splice"}[mode]
    for framing in ("chunked", "content-length", "close-delimited"):
        assert f"spliced {len(blob)} bytes with {binding} ({framing})" in log
    assert "Traceback" not in log


def test_head_has_no_body_and_keeps_the_connection(gunicorn_factory, tmp_path, blob):
    server = start_test_views(gunicorn_factory, tmp_path)
    client = RawClient(server.port)
    client.request("HEAD", "/_test/cat/blob.bin")
    status, headers, _ = client.response(head=True)
    assert status == 200
    client.request("HEAD", "/blob.bin")
    status, headers, _ = client.response(head=True)
    assert status == 200 and headers["content-length"] == str(len(blob))
    client.request("GET", "/_test/cat/blob.bin")
    status, _, body = client.response()
    assert body == blob  # nothing of the HEAD responses leaked into this one
    client.close()
    worker = server.worker_pids()[0]
    assert wait_until(lambda: children(worker) == [])


def test_splice_off_falls_back_to_copying_the_same_bytes(gunicorn_factory, tmp_path, blob):
    server = start_test_views(gunicorn_factory, tmp_path, STREAMING_SPLICE="off")
    client = RawClient(server.port)
    client.request("GET", "/_test/cat/blob.bin")
    assert client.response()[2] == blob
    client.close()
    assert "spliced" not in log_text(tmp_path)


@pytest.mark.parametrize("mode", ["auto", "off"])
def test_a_tool_failing_mid_stream_truncates_visibly(gunicorn_factory, tmp_path, blob, mode):
    server = start_test_views(gunicorn_factory, tmp_path, STREAMING_SPLICE=mode)
    client = RawClient(server.port)
    client.request("GET", "/_test/fail/blob.bin")
    with pytest.raises(EOFError):
        client.response()  # no terminating chunk: the client can tell the body is incomplete
    client.close()
    log = log_text(tmp_path)
    assert wait_until(lambda: "the tool failed" in log_text(tmp_path))
    log = log_text(tmp_path)
    assert log.count("stream ended early") == 1
    assert "Traceback" not in log


@pytest.mark.parametrize("mode", ["auto", "off"])
def test_a_stalled_tool_and_a_client_that_never_reads_free_the_thread(gunicorn_factory, tmp_path, blob, mode):
    server = start_test_views(gunicorn_factory, tmp_path, STREAMING_STALL_TIMEOUT="1", STREAMING_SPLICE=mode)
    worker = server.worker_pids()[0]
    started = time.monotonic()
    silent = RawClient(server.port)
    silent.request("GET", "/_test/stall")
    with pytest.raises(EOFError):
        silent.response()
    assert time.monotonic() - started < 15
    silent.close()
    # a client that never reads: the socket buffers fill, the send stalls, the tool is killed
    lazy = socket.create_connection(("127.0.0.1", server.port))
    lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    lazy.sendall(b"GET /_test/zero/1000000000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert wait_until(lambda: "the client stopped reading" in log_text(tmp_path), timeout=30)
    assert wait_until(lambda: children(worker) == [])
    lazy.close()
    log = log_text(tmp_path)
    assert "the tool produced nothing in time" in log
    assert "Traceback" not in log


def test_200_disconnects_leave_no_child_zombie_or_fd(gunicorn_factory, tmp_path, blob):
    server = start_test_views(gunicorn_factory, tmp_path, LOG_LEVEL="INFO")
    worker = server.worker_pids()[0]
    warm = RawClient(server.port)
    warm.request("GET", "/_test/zero/1000")
    assert warm.response()[2] == b"\0" * 1000
    warm.close()
    assert wait_until(lambda: children(worker) == [])
    baseline = open_fds(worker)
    leave_mid_body(server.port, "/_test/zero/1000000000", times=200, first_bytes=65536)
    assert wait_until(lambda: children(worker) == [] and open_fds(worker) <= baseline, timeout=20), (
        children(worker), open_fds(worker), baseline)
    check = RawClient(server.port)
    check.request("GET", "/_test/cat/blob.bin")
    assert check.response()[2] == blob
    check.close()
    log = log_text(tmp_path)
    assert "Traceback" not in log
    assert log.count("client went away") >= 150  # one line each (a few end before the first splice)


def test_tls_falls_back_to_copying(gunicorn_factory, tmp_path, blob):
    import subprocess

    import requests
    import urllib3

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-days", "1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    server = start_test_views(gunicorn_factory, tmp_path, GUNICORN_CMD_ARGS=f"--certfile {cert} --keyfile {key}")
    urllib3.disable_warnings()
    response = requests.get(f"https://127.0.0.1:{server.port}/_test/cat/blob.bin", verify=False, timeout=20)
    assert response.content == blob
    log = log_text(tmp_path)
    assert "spliced" not in log and "Traceback" not in log


def test_a_content_length_that_does_not_match_the_output_ends_the_connection(gunicorn_factory, tmp_path, blob):
    server = start_test_views(gunicorn_factory, tmp_path)
    short = RawClient(server.port)
    short.request("GET", "/_test/cat/blob.bin?length=1&off=-100")  # the tool writes 100 bytes too many
    status, headers, body = short.response()
    assert body == blob[:-100]
    assert short.closed_by_peer()
    short.close()
    long = RawClient(server.port)
    long.request("GET", "/_test/cat/blob.bin?length=1&off=100")  # ... or 100 too few
    with pytest.raises(EOFError):
        long.response()
    long.close()
    log = log_text(tmp_path)
    assert "the tool wrote more than its Content-Length" in log
    assert "the body ended 100 bytes short" in log
    assert "Traceback" not in log
