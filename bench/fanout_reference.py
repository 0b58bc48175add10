"""The reference for bench/cameras.py: a minimal one-thread epoll MJPEG fan-out, nothing else.

    .venv/bin/python bench/fanout_reference.py PORT [WIDTHxHEIGHT] [FPS]

One process: the service's own emulated camera (``EmulatedSource``: the same drawing and
JPEG encoding) in a producer thread, the service's framing (``encode_part``, one chunk per
part), and one epoll thread that accepts, answers any request head with the stream's
headers, and writes each new frame (one bytes object for everyone) to every viewer with a
non-blocking send; a viewer whose socket is still busy skips to the newest frame once it
drains. No HTTP parsing, no Django, no Redis, no limits: the floor a fan-out can cost here.
"""

from __future__ import annotations

import os
import select
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streaming.cameras.bus import Frame  # noqa: E402
from streaming.cameras.mjpeg import CONTENT_TYPE, encode_part  # noqa: E402
from streaming.cameras.sources import EmulatedSource  # noqa: E402

HEAD = (f"HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nTransfer-Encoding: chunked\r\n"
        "Cache-Control: no-store\r\n\r\n").encode()


class Viewer:
    __slots__ = ("sock", "head", "pending", "last")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.head = b""
        self.pending: memoryview | None = None
        self.last = -1


def produce(source: EmulatedSource, latest: list, wake: int) -> None:
    for seq, jpeg in enumerate(source.frames(threading.Event())):
        part = encode_part(Frame(seq, time.time(), jpeg))
        latest[0] = (seq, b"%X\r\n%b\r\n" % (len(part), part))
        os.write(wake, b"\0")


def serve(port: int, size: tuple[int, int], fps: float) -> None:
    listener = socket.create_server(("127.0.0.1", port), backlog=4096)
    listener.setblocking(False)
    wake_read, wake_write = os.pipe2(os.O_NONBLOCK)
    latest: list = [None]
    threading.Thread(target=produce, args=(EmulatedSource(size=size, fps=fps), latest, wake_write), daemon=True).start()
    poll = select.epoll()
    poll.register(listener.fileno(), select.EPOLLIN)
    poll.register(wake_read, select.EPOLLIN)
    viewers: dict[int, Viewer] = {}
    streaming: dict[Viewer, None] = {}  # viewers past their request head, in arrival order

    def send(viewer: Viewer, data: bytes | memoryview) -> None:
        try:
            count = viewer.sock.send(data)
        except BlockingIOError:
            count = 0
        except OSError:
            drop(viewer)
            return
        if count < len(data):
            if viewer.pending is None:
                poll.modify(viewer.sock.fileno(), select.EPOLLIN | select.EPOLLOUT)
            viewer.pending = memoryview(data)[count:]
        elif viewer.pending is not None:
            viewer.pending = None
            poll.modify(viewer.sock.fileno(), select.EPOLLIN)
            offer(viewer)

    def offer(viewer: Viewer) -> None:
        frame = latest[0]
        if frame is not None and viewer.pending is None and viewer.last != frame[0]:
            viewer.last = frame[0]
            send(viewer, frame[1])

    def drop(viewer: Viewer) -> None:
        viewers.pop(viewer.sock.fileno(), None)
        streaming.pop(viewer, None)
        poll.unregister(viewer.sock.fileno())
        viewer.sock.close()

    while True:
        for fd, events in poll.poll():
            if fd == listener.fileno():
                while True:
                    try:
                        sock, _ = listener.accept()
                    except BlockingIOError:
                        break
                    sock.setblocking(False)
                    frame = latest[0]
                    buffer = min(max(2 * len(frame[1]), 64 << 10), 4 << 20) if frame else 64 << 10
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer)  # as the service's viewers
                    viewers[sock.fileno()] = Viewer(sock)
                    poll.register(sock.fileno(), select.EPOLLIN)
            elif fd == wake_read:
                os.read(wake_read, 4096)
                for viewer in tuple(streaming):
                    offer(viewer)
            else:
                viewer = viewers.get(fd)
                if viewer is None:
                    continue
                if events & select.EPOLLOUT and viewer.pending is not None:
                    send(viewer, viewer.pending)
                if events & select.EPOLLIN and viewer.sock.fileno() >= 0:
                    read(viewer, streaming, send, drop)


def read(viewer: Viewer, streaming: dict[Viewer, None], send, drop) -> None:
    try:
        data = viewer.sock.recv(65536)
    except BlockingIOError:
        return
    except OSError:
        data = b""
    if not data:
        drop(viewer)
        return
    if viewer in streaming or b"\r\n\r\n" not in viewer.head + data:
        viewer.head += data if viewer not in streaming else b""
        return
    streaming[viewer] = None
    send(viewer, HEAD)


if __name__ == "__main__":
    port = int(sys.argv[1])
    width, height = (int(n) for n in (sys.argv[2] if len(sys.argv) > 2 else "640x480").split("x"))
    serve(port, (width, height), float(sys.argv[3]) if len(sys.argv) > 3 else 15.0)
