"""nginx in front of a test's gunicorn, running the shipped site file (see ``mediasite.nginx``)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from mediasite import nginx as nginx_config
from tests.conftest import free_port, stop_process

NGINX = "/usr/sbin/nginx"


class Nginx:
    """A real nginx running the shipped site file, with only its ports (and temp folders) changed."""

    def __init__(self, workdir: Path, upstream_port: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        conf = nginx_config.standalone(workdir, upstream_port, self.port)
        self.process = subprocess.Popen([NGINX, "-p", str(workdir), "-c", str(conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {(workdir / 'error.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        stop_process(self.process, 5)
