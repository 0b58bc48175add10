"""The Redis side of the camera relay: what crosses between workers and machines.

Per camera ``<name>`` (keys under ``mediasite:cameras:<name>:``):

    frames     pub/sub channel: b"F" + (seq, capture time) + JPEG, or b"E" + failure text
    latest     the last frame message (for snapshots), expiring soon after the producer stops
    lease      who runs the producer (owner id); set NX with a TTL, renewed while it runs
    viewers    hash: worker id -> "count unix-time", written when a worker admits a viewer
               (checked against every worker's count in one Lua step) and on every heartbeat
    status     JSON written by the producer: state, error, fps, frames, retry time
    producers  how many producers are running now (a gauge: 0 or 1 when all is well)
    starts     how many producers were ever started (a counter, for tests and operators)

One Redis client per process (created after fork, keyed by URL), never one per request.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings

PREFIX = "mediasite:cameras:"
FRAME = b"F"
FAILURE = b"E"
HEADER = struct.Struct("!Qd")
POOL_SIZE = 16
VIEWERS_FRESH = 3.0  # a worker's viewer count older than this is ignored (the worker died)

_clients: dict[tuple[int, str], redis.Redis] = {}
_clients_lock = threading.Lock()


def client() -> redis.Redis:
    """This process's client for ``settings.REDIS_URL``."""
    key = (os.getpid(), settings.REDIS_URL)
    with _clients_lock:
        found = _clients.get(key)
        if found is None:
            # Bounded, so viewer threads arriving together cannot open connections without limit.
            # RESP2: under RESP3 (redis-py 8's default) every pub/sub message is first formatted for a
            # debug log line, logged or not: str() of a whole frame, 0.3 ms per frame in every worker.
            pool = redis.BlockingConnectionPool.from_url(
                settings.REDIS_URL, max_connections=POOL_SIZE, timeout=5,
                socket_connect_timeout=2, socket_timeout=5, health_check_interval=30, protocol=2,
            )
            found = redis.Redis(connection_pool=pool)
            _clients[key] = found
        return found


def key(name: str, part: str) -> str:
    return f"{PREFIX}{name}:{part}"


def process_id() -> str:
    """Identifies this worker process across machines."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Frame:
    seq: int
    captured: float  # unix time the producer got the frame
    jpeg: bytes


def encode_frame(frame: Frame) -> bytes:
    return FRAME + HEADER.pack(frame.seq, frame.captured) + frame.jpeg


def encode_failure(message: str) -> bytes:
    return FAILURE + message.encode("utf-8", "replace")


def decode(message: bytes) -> Frame | str:
    """A Frame, or the failure text."""
    if message[:1] == FRAME:
        seq, captured = HEADER.unpack_from(message, 1)
        return Frame(seq, captured, message[1 + HEADER.size:])
    return message[1:].decode("utf-8", "replace")


def latest_frame(name: str) -> Frame | None:
    data = client().get(key(name, "latest"))
    if not data:
        return None
    decoded = decode(data)
    return decoded if isinstance(decoded, Frame) else None


# --- viewer counts -----------------------------------------------------------


def report_viewers(name: str, worker: str, count: int) -> None:
    if count:
        client().hset(key(name, "viewers"), worker, f"{count} {time.time():.3f}")
    else:
        client().hdel(key(name, "viewers"), worker)


# Sum the fresh counts of the other workers and admit one more viewer here only if the
# total stays within the limit, publishing this worker's new count in the same step. A
# script runs alone in Redis, so workers admitting at once cannot all pass one check.
ADMIT = """
local total = 0
local now, fresh = tonumber(ARGV[3]), tonumber(ARGV[4])
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
    if entries[i] ~= ARGV[1] then
        local count, stamp = string.match(entries[i + 1], '^(%d+) ([%d.]+)$')
        if count and now - tonumber(stamp) <= fresh then
            total = total + tonumber(count)
        end
    end
end
if total + tonumber(ARGV[2]) > tonumber(ARGV[5]) then
    return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. ARGV[3])
return 1
"""


def admit_viewer(name: str, worker: str, count: int, limit: int) -> bool:
    """Publish ``count`` viewers for this worker if all workers' fresh counts then stay within ``limit``."""
    admitted = client().eval(ADMIT, 1, key(name, "viewers"), worker, count, f"{time.time():.3f}", VIEWERS_FRESH, limit)
    return bool(admitted)


def viewer_counts(name: str) -> dict[str, int]:
    """Fresh viewer counts by worker; stale entries (dead workers) are dropped on the way."""
    now = time.time()
    counts: dict[str, int] = {}
    stale = []
    for worker, value in client().hgetall(key(name, "viewers")).items():
        count, _, stamp = value.decode().partition(" ")
        if now - float(stamp or 0) > VIEWERS_FRESH:
            stale.append(worker)
        else:
            counts[worker.decode()] = int(count)
    if stale:
        client().hdel(key(name, "viewers"), *stale)
    return counts


# --- status ------------------------------------------------------------------


def write_status(name: str, **fields: object) -> None:
    client().set(key(name, "status"), json.dumps({**fields, "updated": time.time()}))


def read_status(name: str) -> dict:
    data = client().get(key(name, "status"))
    return json.loads(data) if data else {"state": "idle"}


# --- the producer lease ------------------------------------------------------

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class Lease:
    """Exactly one holder per camera across the deployment; it lapses if the holder dies."""

    def __init__(self, name: str, owner: str, ttl: float) -> None:
        self.key = key(name, "lease")
        self.owner = owner
        self.ttl_ms = int(ttl * 1000)

    def acquire(self) -> bool:
        return bool(client().set(self.key, self.owner, nx=True, px=self.ttl_ms))

    def renew(self) -> bool:
        return bool(client().eval(_RENEW, 1, self.key, self.owner, self.ttl_ms))

    def release(self) -> None:
        client().eval(_RELEASE, 1, self.key, self.owner)


def lease_holder(name: str) -> str | None:
    holder = client().get(key(name, "lease"))
    return holder.decode() if holder else None
