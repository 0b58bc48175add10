"""streaming.splice: both bindings (os.splice and libc via ctypes) on real pipes, sockets and files."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from streaming import splice as splicing
from tests.conftest import same_open_fd_count

BINDINGS = [pytest.param(splicing.os_splice, id="os"), pytest.param(splicing.ctypes_splice, id="ctypes")]


def feed(data: bytes) -> tuple[int, threading.Thread]:
    """A pipe whose write end a thread fills with ``data`` and then closes; returns the read end."""
    read_end, write_end = os.pipe()

    def write() -> None:
        try:
            with os.fdopen(write_end, "wb") as out:
                out.write(data)
        except BrokenPipeError:
            pass  # the test closed the read end early on purpose

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return read_end, thread


def drain(sock: socket.socket, into: bytearray) -> threading.Thread:
    def read() -> None:
        while chunk := sock.recv(1 << 20):
            into.extend(chunk)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("splice", BINDINGS)
def test_pipe_into_a_socket_intact(splice):
    data = os.urandom(6 << 20)
    with same_open_fd_count():
        left, right = socket.socketpair()
        received = bytearray()
        reader = drain(right, received)
        src, writer = feed(data)
        moved = 0
        while True:
            done = splicing.splice_exactly(splice, src, left.fileno(), 1 << 20, stall_timeout=5)
            moved += done
            if done < 1 << 20:
                break
        left.close()
        reader.join(5)
        writer.join(5)
        os.close(src)
        right.close()
    assert moved == len(data)
    assert bytes(received) == data


@pytest.mark.parametrize("splice", BINDINGS)
def test_short_transfers_are_looped_and_end_of_input_stops(splice, tmp_path):
    data = os.urandom(300_000)
    src, writer = feed(data)
    target = tmp_path / "out"
    with open(target, "wb") as out:
        # ask for more than there is: every short transfer is retried, EOF ends it
        moved = splicing.splice_exactly(splice, src, out.fileno(), 10 << 20, stall_timeout=5)
    writer.join(5)
    os.close(src)
    assert moved == len(data)
    assert target.read_bytes() == data


@pytest.mark.parametrize("splice", BINDINGS)
def test_eagain_waits_then_a_reader_that_never_reads_is_a_stall(splice):
    left, right = socket.socketpair()
    left.setblocking(False)  # EAGAIN when the socket buffer is full
    src, writer = feed(os.urandom(8 << 20))
    try:
        with pytest.raises(splicing.Stalled):
            splicing.splice_exactly(splice, src, left.fileno(), 8 << 20, stall_timeout=0.3)
    finally:
        left.close()
        right.close()
        os.close(src)
        writer.join(5)


@pytest.mark.parametrize("splice", BINDINGS)
def test_eagain_on_a_slow_reader_is_waited_out(splice):
    data = os.urandom(4 << 20)
    left, right = socket.socketpair()
    left.setblocking(False)
    src, writer = feed(data)
    received = bytearray()
    reader = drain(right, received)
    assert splicing.splice_exactly(splice, src, left.fileno(), len(data), stall_timeout=5) == len(data)
    left.close()
    reader.join(5)
    writer.join(5)
    os.close(src)
    right.close()
    assert bytes(received) == data


def test_tee_duplicates_without_consuming(tmp_path):
    data = b"tee me " * 1000
    src, writer = feed(data)
    writer.join(5)
    copy_read, copy_write = os.pipe()
    assert splicing.tee(src, copy_write, len(data)) == len(data)
    assert os.read(copy_read, len(data) + 10) == data
    assert os.read(src, len(data) + 10) == data  # still there: tee did not consume it
    for fd in (src, copy_read, copy_write):
        os.close(fd)


def test_errors_are_oserrors_with_errno():
    with pytest.raises(OSError) as caught:
        splicing.ctypes_splice(-1, -1, 10, 0)
    assert caught.value.errno == 9  # EBADF


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("os", splicing.os_splice), ("ctypes", splicing.ctypes_splice), ("auto", splicing.os_splice), ("off", None)],
)
def test_mode_setting_selects_the_binding(mode, expected, settings):
    settings.STREAMING_SPLICE = mode
    assert splicing.splice_function() is expected
    assert splicing.configured_mode() == mode
