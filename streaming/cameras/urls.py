"""Camera routes, included under /cameras/ before the media catch-all."""

from django.urls import path

from . import views

app_name = "cameras"
urlpatterns = [
    path("", views.index, name="index"),
    path("<str:name>/", views.camera_page, name="camera"),
    path("<str:name>/stream.mjpg", views.stream, name="stream"),
    path("<str:name>/snapshot.jpg", views.snapshot, name="snapshot"),
    path("<str:name>/status.json", views.status, name="status"),
]
