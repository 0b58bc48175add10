"""Admin for render jobs: an editor without JSON, and a page that follows a render to its player.

*Add render* is ``forms.RenderForm`` (output, ordered clip rows with the media picker,
music; "Recipe as JSON" for power users), checked by the API's validator. *Save and
start* queues it and opens the render's page; *Save* keeps it unstarted (it stays
editable until started). A started or finished render is shown, not edited: its
heading, progress, stage, ETA, error, buttons and, at completion, a ``<video>`` player
with a poster follow ``/api/renders/<id>/events`` (``render-progress.js``; polling the
status URL where EventSource fails). *Duplicate* opens a new, unsaved render prefilled
from this one. Redis being down never breaks a page or loses an edit: the render is
saved, and the page says it was not started and why.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import URLPattern, path, reverse
from django.utils.safestring import SafeString

from . import display, lifecycle, picker
from .errors import QueueUnavailable, RenderConflict
from .forms import RenderForm
from .models import RenderJob, RenderStatus
from .redis_queue import redis_reachable

EDITOR_FIELDSETS = [
    ("Output", {"fields": ["size_preset", ("width", "height"), ("fps", "format")],
                "classes": ["render-output-fields"]}),
    ("Transitions and music", {"fields": ["crossfade", "audio_source", ("audio_volume", "audio_start"),
                                          "audio_loop"]}),
    ("Recipe as JSON", {"fields": ["recipe_json", "editor"], "classes": ["render-json-fields"],
                        "description": "The recipe the API takes (README, Video renders). Switching tabs "
                                       "turns the form into this JSON and back."}),
]
VIEW_FIELDSETS = [
    ("Status", {"fields": ["progress_bar", "player"]}),
    ("Recipe", {"fields": ["recipe_summary"]}),
    ("Details", {"fields": ["id", "attempts", "rq_job_id", "created_by", "created_at", "queued_at",
                            "started_at", "finished_at"], "classes": ["collapse"]}),
]
SAVE_AND_START = "_saveandstart"
FROM_CHANGE_PAGE = "_from_change"


def editable(render: RenderJob | None) -> bool:
    """A render is edited until it is started; after that it is duplicated instead."""
    return render is None or (not render.started and not render.is_final)


def status_label(render: RenderJob) -> str:
    """The status for people (the script says the same: ``label`` in render-progress.js)."""
    return "not started" if not render.started and not render.is_final else render.status


def buttons(render: RenderJob) -> list[dict[str, Any]]:
    """The render page's buttons, each shown when it applies (the script re-decides on every update)."""
    final, started = render.is_final, render.started
    return [
        {"name": "start", "action": "start_renders", "label": "Start", "shown": not started and not final},
        {"name": "cancel", "action": "cancel_renders", "label": "Cancel", "shown": not final},
        {"name": "retry", "action": "retry_renders", "label": "Retry",
         "shown": render.status in (RenderStatus.FAILED, RenderStatus.CANCELED)},
        {"name": "duplicate", "label": "Duplicate", "shown": True,
         "href": reverse("admin:transforms_renderjob_add") + f"?duplicate={render.pk}"},
    ]


@admin.register(RenderJob)
class RenderJobAdmin(admin.ModelAdmin):
    form = RenderForm
    # No static status column: the progress bar shows the live status (a static one would go stale).
    list_display = ["thumbnail", "short_id", "progress_bar", "length", "clip_count", "created_by", "created_at"]
    list_display_links = ["thumbnail", "short_id"]
    list_filter = ["status"]
    actions = ["start_renders", "cancel_renders", "retry_renders", "duplicate_render"]

    class Media:
        js = ["transforms/render-progress.js", "transforms/render-editor.js"]
        css = {"all": ["transforms/render-admin.css"]}

    def get_urls(self) -> list[URLPattern]:
        # Before the admin's own: its catch-all "<object_id>/" would take "media/".
        picker_url = path("media/", self.admin_site.admin_view(self.media_view), name="transforms_renderjob_media")
        return [picker_url, *super().get_urls()]

    def media_view(self, request: HttpRequest) -> HttpResponse:
        """The media picker, for those who may make or edit renders."""
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            raise PermissionDenied
        return picker.media_view(request)

    def has_change_permission(self, request: HttpRequest, obj: RenderJob | None = None) -> bool:
        return super().has_change_permission(request, obj) and editable(obj)

    def get_fieldsets(self, request: HttpRequest, obj: RenderJob | None = None) -> list:
        return EDITOR_FIELDSETS if editable(obj) else VIEW_FIELDSETS

    def get_readonly_fields(self, request: HttpRequest, obj: RenderJob | None = None) -> list[str]:
        return [] if editable(obj) else flatten_fieldsets(VIEW_FIELDSETS)

    def get_form(self, request: HttpRequest, obj: RenderJob | None = None, change: bool = False,
                 **kwargs: Any) -> type[forms.ModelForm]:
        kwargs["form"] = RenderForm if editable(obj) else forms.ModelForm
        return super().get_form(request, obj, change, **kwargs)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        """``?duplicate=<id>``: a new render prefilled with that render's recipe."""
        try:
            source = RenderJob.objects.filter(pk=uuid.UUID(request.GET.get("duplicate", ""))).first()
        except ValueError:
            source = None
        return {"recipe": source.recipe} if source is not None else {}

    # --- columns and read-only fields -----------------------------------------------------------

    @admin.display(description="")
    def thumbnail(self, obj: RenderJob) -> SafeString:
        return render_to_string("transforms/render_thumbnail.html", display.list_thumbnail(obj))

    @admin.display(description="render")
    def short_id(self, obj: RenderJob) -> str:
        return str(obj.pk)[:8]

    @admin.display(description="length")
    def length(self, obj: RenderJob) -> str:
        return picker.seconds_label(display.render_seconds(obj)) or "-"

    @admin.display(description="clips")
    def clip_count(self, obj: RenderJob) -> int:
        return len(obj.recipe.get("clips", []))

    @admin.display(description="recipe")
    def recipe_summary(self, obj: RenderJob) -> SafeString:
        return render_to_string("transforms/render_recipe.html", {
            "recipe": obj.recipe, "clips": display.clip_rows(obj.recipe),
            "recipe_json": json.dumps(obj.recipe, indent=2)})

    @admin.display(description="output")
    def player(self, obj: RenderJob) -> SafeString:
        return render_to_string("transforms/render_player.html", {"render": obj, **display.player(obj)})

    @admin.display(description="status")
    def progress_bar(self, obj: RenderJob) -> SafeString:
        obj = lifecycle.refresh(obj)
        fields = lifecycle.live_status(obj)
        return render_to_string("transforms/render_progress.html", {
            "render": obj,
            "fields": fields,
            "label": status_label(obj),
            "status_url": reverse("render-status", args=[obj.pk]),
            "events_url": reverse("render-events", args=[obj.pk]),
        })

    # --- saving, and the buttons after it ----------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: RenderJob, form: forms.ModelForm, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        if SAVE_AND_START in request.POST:
            self._start(request, obj)

    def response_add(self, request: HttpRequest, obj: RenderJob, post_url_continue: str | None = None) -> HttpResponse:
        if SAVE_AND_START in request.POST:
            return self._to_render_page(request, obj)
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request: HttpRequest, obj: RenderJob) -> HttpResponse:
        if SAVE_AND_START in request.POST:
            return self._to_render_page(request, obj)
        return super().response_change(request, obj)

    def _to_render_page(self, request: HttpRequest, obj: RenderJob) -> HttpResponse:
        if obj.started:
            self.message_user(request, f"{obj} was saved and started.", messages.SUCCESS)
        else:
            self.message_user(request, f"{obj} was saved; it is not started (see above).", messages.WARNING)
        return HttpResponseRedirect(reverse("admin:transforms_renderjob_change", args=[obj.pk]))

    def _start(self, request: HttpRequest, obj: RenderJob) -> bool:
        try:
            lifecycle.start(obj)
            return True
        except QueueUnavailable as exc:
            self.message_user(request, f"{obj} was not started: {exc.message}. "
                              "Start it again once Redis is back.", messages.ERROR)
        except RenderConflict as exc:
            self.message_user(request, f"{obj}: {exc.message}", messages.WARNING)
        return False

    def _back(self, request: HttpRequest, queryset: QuerySet[RenderJob]) -> HttpResponse | None:
        """A button on a render's page comes back to that page; the list's actions stay on the list."""
        if request.POST.get(FROM_CHANGE_PAGE) and len(queryset) == 1:
            return HttpResponseRedirect(reverse("admin:transforms_renderjob_change", args=[queryset[0].pk]))
        return None

    # --- actions (the list's, and the buttons on a render's page) ------------------------------------

    @admin.action(description="Start selected renders (those not started yet)", permissions=["change"])
    def start_renders(self, request: HttpRequest, queryset: QuerySet[RenderJob]) -> HttpResponse | None:
        started = sum(self._start(request, obj) for obj in queryset if not obj.started and not obj.is_final)
        self.message_user(request, f"{started} render(s) queued.")
        return self._back(request, queryset)

    @admin.action(description="Cancel selected renders", permissions=["change"])
    def cancel_renders(self, request: HttpRequest, queryset: QuerySet[RenderJob]) -> HttpResponse | None:
        done = 0
        for obj in queryset:
            if obj.is_final:
                continue
            try:
                lifecycle.cancel(obj)
                done += 1
            except QueueUnavailable as exc:
                self.message_user(request, f"{obj} not canceled: {exc.message}", messages.ERROR)
        self.message_user(request, f"{done} render(s) canceled or asked to stop.")
        return self._back(request, queryset)

    @admin.action(description="Retry selected renders (failed or canceled)", permissions=["change"])
    def retry_renders(self, request: HttpRequest, queryset: QuerySet[RenderJob]) -> HttpResponse | None:
        retried = sum(self._start(request, obj) for obj in queryset
                      if obj.status in (RenderStatus.FAILED, RenderStatus.CANCELED))
        self.message_user(request, f"{retried} render(s) queued again.")
        return self._back(request, queryset)

    @admin.action(description="Duplicate the selected render (a new render, prefilled)", permissions=["add"])
    def duplicate_render(self, request: HttpRequest, queryset: QuerySet[RenderJob]) -> HttpResponse | None:
        if len(queryset) != 1:
            self.message_user(request, "Select one render to duplicate.", messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:transforms_renderjob_add") + f"?duplicate={queryset[0].pk}")

    # --- pages ----------------------------------------------------------------------------------------

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not redis_reachable():
            self.message_user(request, "Redis is unreachable: renders cannot be started or canceled and live "
                              "progress is not shown (the figures are the last ones saved).", messages.ERROR)
        return super().changelist_view(request, extra_context)

    def changeform_view(self, request: HttpRequest, object_id: str | None = None, form_url: str = "",
                        extra_context: dict[str, Any] | None = None) -> HttpResponse:
        render = self.get_object(request, object_id) if object_id else None
        if request.method == "GET" and not redis_reachable():
            self.message_user(request, "Redis is unreachable: renders can be saved but not started, and live "
                              "progress is not shown.", messages.ERROR)
        extra_context = {
            **(extra_context or {}),
            "picker_url": reverse("admin:transforms_renderjob_media"),
            "render_editable": editable(render),
            # A started render is not edited: its buttons replace the Save row.
            "show_save_and_add_another": False,
            "show_save_and_continue": False,
        }
        if render is not None:
            extra_context.update(render_buttons=buttons(render), render_status=status_label(render),
                                 title="Render" if not editable(render) else "Change render")
        return super().changeform_view(request, object_id, form_url, extra_context)

