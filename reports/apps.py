from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "tsreview"

    def ready(self):
        from . import checks, dbroles  # noqa: F401  (checks registers the deploy checks)

        post_migrate.connect(dbroles.after_migrate, sender=self, dispatch_uid="tsreview-grant-runtime")
