"""Render samples for /metrics, read when the scrape comes: renders by state, durations, queue length.

The row is the source of truth for renders (it survives Redis and worker restarts), so
the counts and the duration histogram are read from the database in one query at
scrape time rather than counted by work horses that come and go: a render's duration
is in the histogram as soon as its row says it is complete, whichever worker ran it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.db import DatabaseError
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum

from streaming.health import register_collector

from .errors import REDIS_ERRORS
from .models import RenderJob, RenderStatus
from .redis_queue import render_queue

logger = logging.getLogger(__name__)
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800)


def collect() -> Iterator[Any]:
    """The render samples; none when the database cannot be read (/readyz says why), never a failed scrape."""
    try:
        yield from render_samples()
    except DatabaseError as exc:
        logger.warning("metrics: render samples left out, the database cannot be read: %s", exc)


def render_samples() -> Iterator[Any]:
    from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

    counts = dict(RenderJob.objects.values_list("status").annotate(n=Count("pk")).order_by())
    by_state = GaugeMetricFamily("mediasite_renders", "Renders by state (database rows)", labels=["state"])
    for state in RenderStatus:
        by_state.add_metric([state.value], counts.get(state.value, 0))
    yield by_state

    took = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    done = RenderJob.objects.filter(status=RenderStatus.COMPLETE, started_at__isnull=False,
                                    finished_at__isnull=False).annotate(took=took)
    below = {f"le_{b}": Count("pk", filter=Q(took__lte=timedelta(seconds=b))) for b in DURATION_BUCKETS}
    totals = done.aggregate(count=Count("pk"), total=Sum("took"), **below)
    buckets = [(str(float(b)), totals[f"le_{b}"]) for b in DURATION_BUCKETS] + [("+Inf", totals["count"])]
    seconds = totals["total"].total_seconds() if totals["total"] else 0.0
    yield HistogramMetricFamily("mediasite_render_seconds", "Seconds from start to completion of finished renders",
                                buckets=buckets, sum_value=seconds)

    try:
        waiting = render_queue().count
    except REDIS_ERRORS:
        return  # /readyz says Redis is down; the sample is left out rather than reported as 0
    yield GaugeMetricFamily("mediasite_render_queue_length", "Render jobs waiting in the queue", value=waiting)


def register() -> None:
    register_collector(collect)
