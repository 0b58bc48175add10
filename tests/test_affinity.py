"""Workers pinned one per core (streaming/affinity.py), while the tools they start use every core."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from streaming import affinity
from tests.conftest import PROJECT, wait_for

CPUS = sorted(os.sched_getaffinity(0))
needs_two_cores = pytest.mark.skipif(len(CPUS) < 2, reason="pinning needs at least two cores")


@pytest.mark.parametrize(
    ("setting", "workers", "cores", "pinned"),
    [
        ("auto", 2, 2, True),
        ("auto", 4, 2, True),
        ("auto", 1, 2, False),  # one worker on two cores: pinning would idle a core
        ("auto", 2, 1, False),
        ("1", 1, 2, True),
        ("on", 1, 1, False),  # nothing to choose between
        ("0", 2, 2, False),
        ("off", 8, 2, False),
    ],
)
def test_what_the_setting_means(monkeypatch, setting, workers, cores, pinned):
    monkeypatch.setattr(affinity, "available_cpus", lambda: frozenset(range(cores)))
    assert affinity.should_pin(setting, workers) is pinned


CHILD = textwrap.dedent(
    """
    import json, os, sys, threading
    sys.path.insert(0, sys.argv[1])
    from streaming import affinity
    from streaming.pipeline import Pipeline

    cpu = affinity.pin_worker([])
    seen = {}
    thread = threading.Thread(target=lambda: seen.update(thread=sorted(os.sched_getaffinity(0))))
    thread.start(); thread.join()
    with Pipeline([["grep", "Cpus_allowed_list", "/proc/self/status"]], deadline=10) as tool:
        tool.wait_for_output()
        output = b""
        while chunk := tool.read():
            output += chunk
    print(json.dumps({"cpu": cpu, "process": sorted(os.sched_getaffinity(0)), "thread": seen["thread"],
                      "tool": output.decode().split(":")[1].strip()}))
    """
)


@needs_two_cores
def test_a_pinned_worker_keeps_its_threads_on_its_core_but_its_tools_get_every_core():
    result = subprocess.run([sys.executable, "-c", CHILD, str(PROJECT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["process"] == [seen["cpu"]]
    assert seen["thread"] == [seen["cpu"]]  # threads inherit the pin
    every = f"{CPUS[0]}-{CPUS[-1]}" if CPUS == list(range(CPUS[0], CPUS[-1] + 1)) else None
    assert seen["tool"] == every or seen["tool"] == ",".join(map(str, CPUS))


def pinned_cores(pids: list[int]) -> list[frozenset[int]]:
    return [frozenset(os.sched_getaffinity(pid)) for pid in pids]


@needs_two_cores
def test_gunicorn_workers_each_get_a_core_of_their_own(gunicorn_factory, tmp_path):
    server = gunicorn_factory({"MEDIA_ROOT": str(tmp_path), "GUNICORN_PIN_WORKERS": "1"}, workers=2)
    pids = wait_for(lambda: (found := server.worker_pids()) and len(found) == 2 and found)
    cores = wait_for(lambda: (masks := pinned_cores(pids)) and all(len(mask) == 1 for mask in masks) and masks)
    assert cores[0] != cores[1]
    assert os.sched_getaffinity(server.process.pid) == set(CPUS)  # the arbiter itself is not pinned


@needs_two_cores
def test_pinning_can_be_turned_off(gunicorn_factory, tmp_path):
    server = gunicorn_factory({"MEDIA_ROOT": str(tmp_path), "GUNICORN_PIN_WORKERS": "0"}, workers=2)
    pids = wait_for(lambda: (found := server.worker_pids()) and len(found) == 2 and found)
    assert all(mask == frozenset(CPUS) for mask in pinned_cores(pids))
