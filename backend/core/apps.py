from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        # Imported for their side effect: registering system checks and the OpenAPI auth extension.
        from core import checks, schema  # noqa: F401
