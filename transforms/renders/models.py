"""The render job row: the source of truth for a render, surviving Redis and worker restarts.

Live progress is kept in the cache (see ``transforms.renders.progress``); the row receives a copy
at the start, at each tenth and at the end, so a reader without Redis still sees roughly
where a render stood, and the final state never depends on Redis.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class RenderStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    PROCESSING = "processing", "processing"
    COMPLETE = "complete", "complete"
    FAILED = "failed", "failed"
    CANCELED = "canceled", "canceled"


# The numeric codes existing clients of render services know (DESIGN.md): -1 failed, 0 queued,
# 1 complete, 4 processing. A canceled render is a render that did not succeed: -1.
STATE_CODES = {
    RenderStatus.FAILED: -1,
    RenderStatus.CANCELED: -1,
    RenderStatus.QUEUED: 0,
    RenderStatus.COMPLETE: 1,
    RenderStatus.PROCESSING: 4,
}
FINAL_STATUSES = frozenset({RenderStatus.COMPLETE, RenderStatus.FAILED, RenderStatus.CANCELED})


class RenderJob(models.Model):
    # The id is made before the row or the rq job exists, so the progress URL is known at once.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    recipe = models.JSONField(help_text="The validated recipe (see README, Video renders).")
    status = models.CharField(max_length=16, choices=RenderStatus.choices, default=RenderStatus.QUEUED)
    progress = models.FloatField(default=0.0, help_text="Overall percent, 0..100.")
    stage = models.CharField(max_length=32, blank=True, default="")
    error = models.TextField(blank=True, default="")
    output = models.CharField(max_length=255, blank=True, default="", help_text="Path under MEDIA_ROOT.")
    # The rq job of the current attempt; empty while the render has not been started.
    rq_job_id = models.CharField(max_length=80, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # The table, the admin URLs and the migrations are the transforms app's (transforms/models.py
        # re-exports this model so Django finds it there).
        app_label = "transforms"
        ordering = ["-created_at"]
        verbose_name = "render"

    def __str__(self) -> str:
        # No status here: the admin shows this in headings and messages, where a status would go stale.
        return f"render {str(self.id)[:8]}"

    @property
    def state(self) -> int:
        return STATE_CODES[RenderStatus(self.status)]

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def started(self) -> bool:
        """Whether the render was ever handed to the queue (a render saved without Start was not)."""
        return bool(self.rq_job_id)
