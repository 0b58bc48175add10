"""What the benchmarks read about processes: a free port, a process tree, CPU time.

CPU time comes from /proc/<pid>/stat because it is the steady figure on a noisy
2-core machine: wall-clock rates move with other load, CPU seconds per request do not.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable

TICKS = os.sysconf("SC_CLK_TCK")
# Fields of /proc/<pid>/stat counted after the ")" that ends the command name.
USER, SYSTEM, CHILDREN_USER, CHILDREN_SYSTEM = 11, 12, 13, 14
OWN = (USER, SYSTEM)
WITH_REAPED_CHILDREN = (USER, SYSTEM, CHILDREN_USER, CHILDREN_SYSTEM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def cpu_seconds(pids: Iterable[int], fields: tuple[int, ...] = OWN) -> float:
    """CPU seconds of ``pids`` summed over ``fields``; a process that is gone counts nothing."""
    total = 0
    for pid in pids:
        try:
            values = stat_fields(pid)
        except OSError:
            continue
        total += sum(int(values[index]) for index in fields)
    return total / TICKS


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, level by level."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(stat_fields(int(entry))[1])
            except OSError:
                continue
    found, frontier = [], {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found += sorted(frontier)
    return found
