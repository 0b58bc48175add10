"""Scripts that stand in for a render tool behind ``tests.splice_urls.cached``: they log each run
(so a test can count renders) and write a known file, at once or slowly, succeeding or not."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

COUNTING_TOOL = """#!/bin/sh
echo "$$" >> "{count}"
sleep 0.3
exec cat "{media}/$1"
"""


def install_tool(tmp_path: Path, script: str) -> bytes:
    """<tmp>/media/out.bin (2 MiB of random bytes) and <tmp>/tool running ``script``, which
    ``tests.splice_urls.cached`` runs; returns the bytes the tool will write."""
    media = tmp_path / "media"
    media.mkdir(exist_ok=True)
    data = os.urandom(2 << 20)
    (media / "out.bin").write_bytes(data)
    tool = tmp_path / "tool"
    tool.write_text(script)
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return data


def invocations(count: Path) -> int:
    """How many times the tool ran (one line per run in the count file)."""
    return len(count.read_text().split()) if count.exists() else 0


SLOW_TOOL = """#!{python}
import os, sys, time
with open("{count}", "a") as count:
    count.write(f"{{os.getpid()}}\\n")
data = open("{media}/" + sys.argv[1], "rb").read()
step = len(data) // 20 + 1
for start in range(0, len(data), step):
    sys.stdout.buffer.write(data[start:start + step])
    sys.stdout.flush()
    time.sleep(0.1)
sys.exit(int(os.environ.get("TOOL_EXIT", "0")))
"""


def slow_tool(tmp_path: Path, fail: bool = False) -> bytes:
    """A tool that streams a 2 MiB file in 20 slices over about 2 s (and fails at the end if told)."""
    script = SLOW_TOOL.format(python=sys.executable, count=tmp_path / "count", media=tmp_path / "media")
    return install_tool(tmp_path, script.replace('os.environ.get("TOOL_EXIT", "0")', '"3"') if fail else script)
