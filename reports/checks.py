"""Deploy checks (`manage.py check --deploy`) for what docs/security.md asks of production."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def two_roles_and_audit_anchors(app_configs, **kwargs):
    found = []
    databases = settings.DATABASES
    if databases["default"]["ENGINE"].endswith("postgresql"):
        owner = databases.get("owner")
        if owner is None or owner.get("USER") == databases["default"].get("USER"):
            found.append(Warning(
                "The app runs as the role that owns its tables: it could disable the audit log's triggers.",
                hint="Set DATABASE_URL to a runtime role and DATABASE_OWNER_URL to the owner, then "
                     "`manage.py migrate --database owner` (README, production).", id="tsreview.W001"))
    if not settings.TSREVIEW_AUDIT_KEY:
        found.append(Warning("TSREVIEW_AUDIT_KEY is not set: the audit chain's links need a key kept outside the database.",
                             hint="ID:KEY with KEY 32 random bytes in urlsafe base64; or TSREVIEW_AUDIT_KEY_FILE.",
                             id="tsreview.W002"))
    if not settings.TSREVIEW_AUDIT_CHECKPOINTS:
        found.append(Warning("TSREVIEW_AUDIT_CHECKPOINTS is not set: the chain's head is not checkpointed outside the database.",
                             hint="A path on append-only storage the database's users cannot rewrite.", id="tsreview.W003"))
    return found
