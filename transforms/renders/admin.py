"""Admin for render jobs: create one from a JSON recipe, Start / Cancel / Retry, live progress bars.

The progress bar (``transforms/render_progress.html`` + ``render-progress.js``) follows
``/api/renders/<id>/events`` and falls back to polling the status URL when EventSource
fails. Redis being down never breaks a page: actions report it as an error message and
the change list says that live progress is unavailable.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import SafeString

from . import lifecycle
from .errors import InvalidRecipe, QueueUnavailable, RenderConflict
from .models import RenderJob, RenderStatus
from .recipes import validate_recipe
from .redis_queue import redis_reachable

EXAMPLE_RECIPE = {
    "size": [1280, 720],
    "fps": 24,
    "format": "mp4",
    "clips": [{"title": "Hello", "duration": 2, "font_size": 64}],
    "crossfade": 0,
}


class RenderJobForm(forms.ModelForm):
    recipe = forms.JSONField(
        widget=forms.Textarea(attrs={"rows": 18, "cols": 90, "style": "font-family: monospace"}),
        initial=EXAMPLE_RECIPE,
        help_text="Paths are relative to MEDIA_ROOT. See the README, section Video renders.",
    )
    start_now = forms.BooleanField(required=False, initial=True, help_text="Queue the render when it is saved.")

    class Meta:
        model = RenderJob
        fields = ["recipe"]

    def clean_recipe(self) -> dict:
        try:
            return validate_recipe(self.cleaned_data["recipe"])
        except InvalidRecipe as exc:
            raise forms.ValidationError(
                [f"{field}: {message}" for field, problems in exc.fields.items() for message in problems]
            ) from None


@admin.register(RenderJob)
class RenderJobAdmin(admin.ModelAdmin):
    form = RenderJobForm
    # No static status column: the progress bar shows the live status (a static one would go stale).
    list_display = ["short_id", "progress_bar", "clip_count", "created_by", "created_at"]
    list_filter = ["status"]
    actions = ["start_renders", "cancel_renders", "retry_renders"]
    readonly_fields = ["id", "progress_bar", "error", "output_link", "pretty_recipe", "attempts",
                       "rq_job_id", "created_by", "created_at", "queued_at", "started_at", "finished_at"]

    class Media:
        js = ["transforms/render-progress.js"]

    def get_fields(self, request: HttpRequest, obj: RenderJob | None = None) -> list[str]:
        if obj is None:
            return ["recipe", "start_now"]
        return self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: RenderJob | None = None) -> list[str]:
        return [] if obj is None else self.readonly_fields

    @admin.display(description="render")
    def short_id(self, obj: RenderJob) -> str:
        return str(obj.pk)[:8]

    @admin.display(description="clips")
    def clip_count(self, obj: RenderJob) -> int:
        return len(obj.recipe.get("clips", []))

    @admin.display(description="recipe")
    def pretty_recipe(self, obj: RenderJob) -> SafeString:
        return render_to_string("transforms/render_recipe.html", {"recipe": json.dumps(obj.recipe, indent=2)})

    @admin.display(description="output")
    def output_link(self, obj: RenderJob) -> SafeString | str:
        if not obj.output:
            return "-"
        return render_to_string("transforms/render_output.html", {"url": settings.MEDIA_URL + obj.output,
                                                                   "name": obj.output})

    @admin.display(description="progress")
    def progress_bar(self, obj: RenderJob) -> SafeString:
        obj = lifecycle.refresh(obj)
        fields = lifecycle.live_status(obj)
        return render_to_string("transforms/render_progress.html", {
            "render": obj,
            "fields": fields,
            "not_started": not obj.started and not obj.is_final,
            "output_url": settings.MEDIA_URL + fields["output"] if fields["output"] else "",
            "status_url": reverse("render-status", args=[obj.pk]),
            "events_url": reverse("render-events", args=[obj.pk]),
        })

    def save_model(self, request: HttpRequest, obj: RenderJob, form: forms.ModelForm, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        if not change and form.cleaned_data.get("start_now"):
            self._start(request, obj)

    def _start(self, request: HttpRequest, obj: RenderJob) -> bool:
        try:
            lifecycle.start(obj)
            return True
        except QueueUnavailable as exc:
            self.message_user(request, f"render {str(obj.pk)[:8]} was not started: {exc.message}. "
                              "Start it again once Redis is back.", messages.ERROR)
        except RenderConflict as exc:
            self.message_user(request, f"render {str(obj.pk)[:8]}: {exc.message}", messages.WARNING)
        return False

    @admin.action(description="Start selected renders (those not started yet)")
    def start_renders(self, request: HttpRequest, queryset: QuerySet[RenderJob]) -> None:
        started = sum(self._start(request, obj) for obj in queryset if not obj.started and not obj.is_final)
        self.message_user(request, f"{started} render(s) queued.")

    @admin.action(description="Cancel selected renders")
    def cancel_renders(self, request: HttpRequest, queryset: QuerySet[RenderJob]) -> None:
        done = 0
        for obj in queryset:
            if obj.is_final:
                continue
            try:
                lifecycle.cancel(obj)
                done += 1
            except QueueUnavailable as exc:
                self.message_user(request, f"render {str(obj.pk)[:8]} not canceled: {exc.message}", messages.ERROR)
        self.message_user(request, f"{done} render(s) canceled or asked to stop.")

    @admin.action(description="Retry selected renders (failed or canceled)")
    def retry_renders(self, request: HttpRequest, queryset: QuerySet[RenderJob]) -> None:
        retried = sum(self._start(request, obj) for obj in queryset
                      if obj.status in (RenderStatus.FAILED, RenderStatus.CANCELED))
        self.message_user(request, f"{retried} render(s) queued again.")

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not redis_reachable():
            self.message_user(request, "Redis is unreachable: renders cannot be started or canceled and live "
                              "progress is not shown (the figures are the last ones saved).", messages.ERROR)
        return super().changelist_view(request, extra_context)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request.method == "GET" and not redis_reachable():
            self.message_user(request, "Redis is unreachable: live progress is not shown.", messages.ERROR)
        render = self.get_object(request, object_id)
        extra_context = {
            **(extra_context or {}),
            # Nothing on a saved render is editable: offer its actions instead of Save buttons.
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "render_actions": self._actions_for(render) if render is not None else [],
        }
        return super().change_view(request, object_id, form_url, extra_context)

    @staticmethod
    def _actions_for(render: RenderJob) -> list[tuple[str, str]]:
        if render.status in (RenderStatus.FAILED, RenderStatus.CANCELED):
            return [("retry_renders", "Retry")]
        if render.is_final:
            return []
        if not render.started:
            return [("start_renders", "Start"), ("cancel_renders", "Cancel")]
        return [("cancel_renders", "Cancel")]
