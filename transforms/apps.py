from django.apps import AppConfig


class TransformsConfig(AppConfig):
    name = "transforms"
    verbose_name = "Transforms"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  (registers the system checks)
            readiness,
        )
        from .renders import checks as render_checks  # noqa: F401
        from .renders import metrics as render_metrics

        readiness.register()
        render_metrics.register()
