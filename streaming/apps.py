from django.apps import AppConfig


class StreamingConfig(AppConfig):
    name = "streaming"
    verbose_name = "Streaming"

    def ready(self) -> None:
        from . import health
        from .cameras import checks  # noqa: F401  (registers the camera system checks)

        health.register_check("redis", health.redis_ready)
