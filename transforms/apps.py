from django.apps import AppConfig


class TransformsConfig(AppConfig):
    name = "transforms"
    verbose_name = "Transforms"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .renders import checks as render_checks  # noqa: F401
