from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        # Imported for their side effect: registering system checks and the OpenAPI auth extension.
        from core import checks, schema  # noqa: F401
        from core.database_roles import runtime_role_after_migrate

        # Once per `migrate`, after every app's migrations (sender: this app only).
        post_migrate.connect(runtime_role_after_migrate, sender=self)
