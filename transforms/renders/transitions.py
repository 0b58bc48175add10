"""The one way a render row changes state: a conditional UPDATE, then a published snapshot.

Every change of ``status`` is an UPDATE that applies only if ``status`` and ``rq_job_id``
are still what this attempt expects, so a late worker, a cancel and an abandonment check
can race without a final state ever being overwritten. The change is then published to the
cache (``progress.publish``) so live readers see it at once; that part is best effort, as
the row already holds the truth and readers fall back to it.
"""

from __future__ import annotations

import logging
from typing import Any

from . import progress
from .errors import REDIS_ERRORS
from .models import RenderJob

logger = logging.getLogger(__name__)


def row_fields(render: RenderJob) -> dict[str, Any]:
    """The status fields as the database row has them (no live speed or ETA)."""
    return {
        "status": render.status,
        "progress": render.progress,
        "stage": render.stage,
        "fps": None,
        "eta_seconds": 0 if render.is_final else None,
        "error": render.error,
        "output": render.output,
    }


def publish_row(render: RenderJob) -> None:
    """Put the row's state in the cache so live readers see a transition at once (best effort)."""
    try:
        progress.publish(render.pk, row_fields(render))
    except REDIS_ERRORS:
        logger.warning("render %s: could not publish %s to the cache", render.pk, render.status)


def transition(render_id: object, expect: dict[str, Any], **changes: Any) -> RenderJob | None:
    """Apply ``changes`` only if the row still matches ``expect``; return the fresh row if it did."""
    updated = RenderJob.objects.filter(pk=render_id, **expect).update(**changes)
    if not updated:
        return None
    render = RenderJob.objects.get(pk=render_id)
    publish_row(render)
    return render
