"""A strict HTTP/1.1 client (h11) on one kept-alive connection: it refuses any framing error,
such as a chunked body without its last chunk, that a lenient client would let pass."""

from __future__ import annotations

import socket

import h11


class StrictClient:
    def __init__(self, port: int, timeout: float = 60) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.conn = h11.Connection(h11.CLIENT)

    def request(self, method: str, target: str) -> tuple[int, dict[str, str], bytes]:
        """Status, headers (lower-case names) and the whole body; raises h11.RemoteProtocolError on bad framing."""
        if self.conn.our_state is h11.DONE:
            self.conn.start_next_cycle()
        request = h11.Request(method=method, target=target, headers=[("Host", "127.0.0.1")])
        self.sock.sendall(self.conn.send(request) + self.conn.send(h11.EndOfMessage()))
        status, headers, body = 0, {}, bytearray()
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(self.sock.recv(1 << 16))
            elif isinstance(event, h11.Response):
                status = event.status_code
                headers = {name.decode().lower(): value.decode() for name, value in event.headers}
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return status, headers, bytes(body)

    def close(self) -> None:
        self.sock.close()
