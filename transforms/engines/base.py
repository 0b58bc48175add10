"""The engine interface.

An engine turns an ``ImageJob`` (a source, its probed header, a finished
geometry plan and the output encoding) into either the encoded bytes (in-process
engines) or a started ``Pipeline`` whose stdout is the result (tool engines).
Engines know nothing of HTTP; tool engines build their argv in a pure
``commands()`` method so it can be tested as a table.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from streaming.pipeline import Pipeline

from ..errors import InvalidSpec
from ..formats import SOURCE_NAMES
from ..geometry import Plan
from ..orientation import compose
from ..sources import ImageInfo, Source
from ..spec import TransformSpec


@dataclass(frozen=True)
class ImageJob:
    source: Source
    info: ImageInfo
    plan: Plan
    format: str  # concrete output format: jpeg, png, webp, avif, gif
    quality: int
    background: str  # six hex digits
    # The source as the view opened it to probe (header parsed, nothing decoded); an
    # in-process engine decodes from it rather than opening and parsing the file again.
    opened: Image.Image | None = None
    # What was asked: the operations beyond the plan (blur, sharpen, max_bytes), and the
    # spec an engine plans again with once trim=1 has found the content.
    spec: TransformSpec = TransformSpec()

    @property
    def orientation(self) -> int:
        """The one orientation (1-8) that turns the stored pixels into the plan's source: EXIF, rotate, flip."""
        return compose(self.info.orientation, self.spec.rotate, self.spec.flip)

    @property
    def operations(self) -> list[str]:
        """The operations asked for that not every engine carries out (see ``Engine.operations``)."""
        asked = {"blur": self.spec.blur is not None, "sharpen": self.spec.sharpen is not None,
                 "trim": self.plan.trim, "gravity=smart": self.plan.smart, "max_bytes": self.spec.max_bytes is not None}
        return [name for name, given in asked.items() if given]

    @property
    def background_rgb(self) -> tuple[int, int, int]:
        return tuple(int(self.background[i : i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]


class Engine(ABC):
    name: str = ""
    input_formats: frozenset[str] = frozenset()
    output_formats: frozenset[str] = frozenset()
    # Work slots one job of this engine takes (see streaming.limits).
    weight: int = 1
    # Of ``ImageJob.operations``, those this engine carries out (geometry, rotate and flip all do).
    operations: frozenset[str] = frozenset()

    def weight_of(self, job: object) -> int:
        """Work slots ``job`` takes: ``weight`` unless the engine's jobs differ in cost."""
        return self.weight

    @abstractmethod
    def check(self) -> str | None:
        """None when the engine can run here; otherwise why not (shown by system checks)."""

    def tools(self) -> list[str]:
        """Paths (or names on PATH) of the binaries this engine runs."""
        return []

    @abstractmethod
    def version(self) -> str:
        """Changes whenever the same job could produce different bytes (goes into ETags).

        May start the engine's tools: ask ``transforms.engines.engine_status``, which keeps
        the answer per process, rather than calling this in a request.
        """

    def refusal(self, job: ImageJob) -> InvalidSpec | None:
        """Why this engine cannot carry out ``job``, naming the parameter at fault; None when it can.

        Asked while the request is planned, so a job an engine would refuse never takes
        a cache lock or a work slot; ``commands()`` and ``render()`` may assume it is None.
        """
        if job.info.format not in self.input_formats:
            return self.refuse(f"it does not read {SOURCE_NAMES.get(job.info.format, job.info.format)}")
        if job.format not in self.output_formats:
            return self.refuse(f"it does not write {job.format}")
        for operation in job.operations:
            if operation not in self.operations:
                return self.refuse(f"it does not do {operation}")
        return None

    def refuse(self, reason: str) -> InvalidSpec:
        return InvalidSpec("engine", f"{self.name} cannot make this: {reason}")

    @abstractmethod
    def render(self, job: ImageJob, *, deadline: float, on_close: Callable[[], None]) -> bytes | Pipeline:
        """Make the result. In-process engines return bytes (and must call on_close)."""


class CommandEngine(Engine):
    """An engine that runs external tools as a pipeline of argv lists."""

    # A stderr message that fails the job even when every tool exits 0.
    fatal_stderr: re.Pattern[str] | None = None

    @abstractmethod
    def commands(self, job: ImageJob) -> list[list[str]]:
        """The argv of each stage; the first reads the source from stdin."""

    def environment(self) -> dict[str, str] | None:
        """Extra environment for the tools, or None to inherit."""
        return None

    def check(self) -> str | None:
        for tool in self.tools():
            if shutil.which(tool) is None:
                return f"{tool} not found"
        return None

    def version(self) -> str:
        return f"{self.name}:" + ",".join(tool_version(tool) for tool in self.tools())

    def render(self, job: ImageJob, *, deadline: float, on_close: Callable[[], None]) -> Pipeline:
        return self.start(job, deadline=deadline, on_close=on_close)

    def start(
        self, job: ImageJob, *, deadline: float, on_close: Callable[[], None], env: dict[str, str] | None = None
    ) -> Pipeline:
        """Start the tools on the source (with ``env`` added to ``environment()``); stdout is the result.

        The pipeline settles (see ``Pipeline.wait_for_output``): image tools report a
        damaged source only in their exit status, after writing a plausible file.
        ``on_close`` runs exactly once, also when the job cannot even be started.
        """
        try:
            argvs = self.commands(job)
            extra = {**(self.environment() or {}), **(env or {})}
        except BaseException:
            on_close()
            raise
        return Pipeline(
            argvs,
            stdin_path=job.source.path,
            env={**os.environ, **extra} if extra else None,
            deadline=deadline,
            on_close=on_close,
            settle=True,
            fatal_stderr=self.fatal_stderr,
        )


@functools.cache
def tool_version(tool: str) -> str:
    """The first line a tool prints for ``-version``, once per process."""
    try:
        result = subprocess.run(
            [tool, "-version"], capture_output=True, timeout=5, stdin=subprocess.DEVNULL, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (result.stdout or result.stderr).decode("utf-8", "replace").strip().splitlines()
    return text[0][:80] if text else "unknown"
