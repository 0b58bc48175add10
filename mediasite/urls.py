"""URL routes. The media catch-all comes last: any path no other view claims is a media path."""

from django.contrib import admin
from django.urls import include, path

from streaming import health
from transforms import views as media_views
from transforms.renders import api as render_api

urlpatterns = [
    path("", media_views.index, name="index"),
    path("admin/", admin.site.urls),
    path("api/renders/", render_api.submit, name="render-submit"),
    path("api/renders/<str:render_id>", render_api.status, name="render-status"),
    path("api/renders/<str:render_id>/events", render_api.events, name="render-events"),
    path("api/renders/<str:render_id>/cancel", render_api.cancel, name="render-cancel"),
    path("cameras/", include("streaming.cameras.urls")),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    path("play/<path:path>", media_views.player, name="player"),
    path("<path:path>", media_views.media, name="media"),
]
