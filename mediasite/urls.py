"""URL routes. The media catch-all comes last: any path no other view claims is a media path."""

from django.contrib import admin
from django.urls import path

from transforms import views as media_views

urlpatterns = [
    path("", media_views.index, name="index"),
    path("admin/", admin.site.urls),
    path("play/<path:path>", media_views.player, name="player"),
    path("<path:path>", media_views.media, name="media"),
]
