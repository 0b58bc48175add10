"""What the camera tests look at from outside gunicorn: its ffmpeg children and camera threads
(from /proc), a worker's sockets to Redis, the relay's counters, and an open stream."""

from __future__ import annotations

import os

import requests

from tests.conftest import children


def ffmpegs(server) -> list[int]:
    """ffmpeg processes under gunicorn (zombies included: comm stays 'ffmpeg')."""
    found = []
    for pid in children(server.process.pid):
        try:
            with open(f"/proc/{pid}/comm") as comm:
                if comm.read().strip() == "ffmpeg":
                    found.append(pid)
        except OSError:
            continue
    return found


def camera_threads(server, kind: str) -> int:
    """Threads named ``cam-<kind>-...`` (set with prctl) in all gunicorn workers."""
    count = 0
    for pid in server.worker_pids():
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/comm") as comm:
                    count += comm.read().startswith(f"cam-{kind}")
            except OSError:
                continue
    return count


def socket_peers() -> dict[str, int]:
    """Socket inode -> remote port, for every TCP socket on the machine."""
    peers = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                peers[f"socket:[{fields[9]}]"] = int(fields[2].rsplit(":", 1)[1], 16)
    return peers


def worker_fds(pid: int, redis_port: int) -> tuple[int, int]:
    """(fds other than Redis connections, Redis connections): the pool is bounded, the rest must not grow."""
    peers = socket_peers()
    links = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
    to_redis = sum(1 for link in links if peers.get(link) == redis_port)
    return len(links) - to_redis, to_redis


def counter(client, name: str, part: str) -> int:
    """A relay counter of ``streaming.cameras.bus`` (producers, starts) as Redis holds it."""
    return int(client.get(f"mediasite:cameras:{name}:{part}") or 0)


def stopped(client, name: str, server) -> bool:
    """The producer is gone, nobody is subscribed, no ffmpeg is left."""
    numsub = client.pubsub_numsub(f"mediasite:cameras:{name}:frames")[0][1]
    return (
        counter(client, name, "producers") == 0 and numsub == 0 and not ffmpegs(server)
        and camera_threads(server, "") == 0
    )


def open_stream(url: str) -> requests.Response:
    """A stream that must have started (200), read as it arrives."""
    response = requests.get(url, stream=True, timeout=20)
    assert response.status_code == 200, response.text
    return response
