"""Carry out a planned task: a work slot, the engine under a deadline, and its first byte.

A worker process runs at most TRANSFORMS_CONCURRENCY slots of work at once (a transcode
weighs more than a thumbnail); a task waits TRANSFORMS_SLOT_WAIT seconds for its slots and
is otherwise refused with 503 (``streaming.limits.Saturated``). A tool engine's pipeline
is only returned once its first byte is ready: a tool that fails at once is a 422, one
still silent at its deadline a 504, never a truncated 200. The slot is released when the
result is finished: at once for bytes, when the pipeline closes for a stream.
"""

from __future__ import annotations

import logging
import time
from typing import NamedTuple

from streaming.fill import TeedPipeline
from streaming.limits import process_slots
from streaming.metrics import TRANSFORM_SECONDS, WORK_SLOTS
from streaming.pipeline import DeadlineExceeded, Pipeline, PipelineError

from .conf import conf
from .errors import EngineFailed, TookTooLong
from .planning import Task

logger = logging.getLogger(__name__)


class Result(NamedTuple):
    """A made result: its content type and the finished bytes or a started pipeline (maybe filling the cache)."""

    content_type: str
    body: bytes | Pipeline | TeedPipeline


# This process's work slots, sized from TRANSFORMS_CONCURRENCY on first use.
work_slots = process_slots(lambda: conf.concurrency, WORK_SLOTS)


def start(task: Task) -> Result:
    """Take the task's slots, run its engine and, for a pipeline, wait for the first byte.

    A task of weight 0 (a playlist: nothing runs) takes no slot.
    """
    slot = work_slots().acquire(task.weight, wait=float(conf.SLOT_WAIT)) if task.weight else None
    release = slot.release if slot is not None else no_slot
    started = time.monotonic()
    try:
        body = task.engine.render(task.job, deadline=task.deadline, on_close=release)
    except BaseException:
        release()  # idempotent: the engine may have released it already
        raise
    if isinstance(body, Pipeline):
        first_output(body, task)
    TRANSFORM_SECONDS.labels(task.engine.name).observe(time.monotonic() - started)
    return Result(task.content_type, body)


def no_slot() -> None:
    """What a task that took no slot releases."""


def first_output(pipeline: Pipeline, task: Task) -> None:
    """Wait for the tool's first byte before committing to 200; close the pipeline if it never comes."""
    name, source = task.engine.name, task.job.source
    try:
        pipeline.wait_for_output()
    except DeadlineExceeded:
        pipeline.close()
        logger.info("%s took too long on %s", name, source.name)
        raise TookTooLong(f"{name} gave no output within the time limit", path=source.name, engine=name) from None
    except PipelineError as exc:
        pipeline.close()
        logger.info("%s failed on %s: %s", name, source.name, exc)
        raise EngineFailed(
            f"{name} could not process this file: {exc.reason}",
            path=source.name,
            engine=name,
            detail=exc.stderr.replace(str(source.path), source.name).strip()[-300:],
        ) from None
