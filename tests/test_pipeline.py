"""streaming.pipeline with real processes: output, failures, deadlines, kills, no leaks."""

from __future__ import annotations

import os
import sys
import time

import pytest

from streaming.limits import Saturated, WorkSlots
from streaming.pipeline import DeadlineExceeded, Pipeline, PipelineError
from tests.conftest import same_open_fd_count

PY = sys.executable


def test_chain_streams_the_last_stdout(tmp_path, tool_children):
    source = tmp_path / "in.txt"
    source.write_bytes(b"hello pipes\n" * 100_000)
    with tool_children(), same_open_fd_count():
        with Pipeline([["cat"], ["tr", "a-z", "A-Z"]], stdin_path=source) as pipeline:
            pipeline.wait_for_output()
            data = b"".join(iter(lambda: pipeline.read(1 << 20), b""))
    assert data == b"HELLO PIPES\n" * 100_000


def test_a_failing_tool_raises_with_argv_status_and_stderr(tool_children):
    with tool_children(), same_open_fd_count():
        pipeline = Pipeline([[PY, "-c", "import sys; sys.stderr.write('bad input'); sys.exit(3)"]])
        with pytest.raises(PipelineError) as caught:
            pipeline.wait_for_output()
        pipeline.close()
    assert caught.value.returncode == 3
    assert "bad input" in caught.value.stderr
    assert caught.value.argv[0] == PY


def test_failure_after_output_is_raised_at_the_end(tool_children):
    script = "import sys; sys.stdout.write('partial'); sys.stdout.flush(); sys.exit(1)"
    with tool_children(), Pipeline([[PY, "-c", script]]) as pipeline:
        pipeline.wait_for_output()
        assert pipeline.read() == b"partial"
        with pytest.raises(PipelineError):
            pipeline.read()


def test_deadline_kills_a_silent_tool(tool_children):
    started = time.monotonic()
    with tool_children(), same_open_fd_count():
        pipeline = Pipeline([["sleep", "30"]], deadline=0.5)
        with pytest.raises(DeadlineExceeded):
            pipeline.wait_for_output()
        pipeline.close()
    assert time.monotonic() - started < 5


def test_close_mid_stream_kills_the_whole_group_including_grandchildren(tool_children):
    # the tool forks a grandchild that would outlive a plain kill of the child
    script = "import os, subprocess, sys; subprocess.Popen(['sleep', '60']); os.execvp('yes', ['yes'])"
    with tool_children(), same_open_fd_count():
        pipeline = Pipeline([[PY, "-c", script], ["cat"]])
        pipeline.wait_for_output()
        assert pipeline.read(1000)
        group = pipeline.pgid
        pipeline.close()
    deadline = time.monotonic() + 3  # the orphaned grandchild is reaped by init, not by us
    while time.monotonic() < deadline and group_alive(group):
        time.sleep(0.05)
    assert not group_alive(group)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_close_releases_the_slot_exactly_once():
    slots = WorkSlots(1)
    slot = slots.acquire()
    pipeline = Pipeline([["true"]], on_close=slot.release)
    with pytest.raises(Saturated):
        slots.acquire()
    pipeline.close()
    pipeline.close()
    assert slots.used == 0


def test_a_missing_tool_fails_cleanly(tool_children):
    with tool_children(), same_open_fd_count(), pytest.raises(FileNotFoundError):
        Pipeline([["cat"], ["/nonexistent/tool"]])


def test_weighted_slots():
    slots = WorkSlots(4)
    heavy = slots.acquire(3)
    slots.acquire(1)
    with pytest.raises(Saturated):
        slots.acquire(1)
    heavy.release()
    assert slots.used == 1


def test_a_slot_freed_during_the_wait_is_taken():
    import threading

    slots = WorkSlots(1)
    held = slots.acquire()
    threading.Timer(0.2, held.release).start()
    second = slots.acquire(wait=5)
    assert slots.used == 1
    second.release()
    with slots.acquire():
        with pytest.raises(Saturated):
            slots.acquire(wait=0.1)  # nobody frees it: refused after the wait
