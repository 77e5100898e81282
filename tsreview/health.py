"""For load balancers and orchestrators: /healthz says the process answers (no I/O at all);
/readyz says this node can serve: the database answers and has every migration, the broker
answers (when there is one) and the media store is reachable. Both are unauthenticated, cheap
and say nothing but ok or which part is not: no versions, hosts, errors or counts."""

import logging
import os

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

log = logging.getLogger(__name__)
_migrated = False  # once every migration is applied it stays so until a new release restarts us


@login_not_required
@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def _database() -> None:
    global _migrated
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    if not _migrated:
        from django.db.migrations.executor import MigrationExecutor

        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            raise RuntimeError("migrations not applied")
        _migrated = True


def _broker() -> None:
    if not settings.CELERY_BROKER_URL:
        return  # the embedded default runs tasks in-process
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


def _media() -> None:
    from reports.intake.storage import media_store

    files = media_store().files
    if files.kind == "s3":
        files.reachable()
        return
    files.root.mkdir(parents=True, exist_ok=True, mode=0o700)  # made on first use otherwise
    if not os.access(files.root, os.W_OK | os.X_OK):
        raise RuntimeError("media folder not writable")


CHECKS = {"database": _database, "broker": _broker, "media": _media}


@login_not_required
@never_cache
@require_GET
def readyz(request):
    failing = []
    for name, check in CHECKS.items():
        try:
            check()
        except Exception:
            log.warning("readiness check failed: %s", name, exc_info=True)
            failing.append(name)
    if failing:
        return JsonResponse({"status": "unavailable", "failing": failing}, status=503)
    return JsonResponse({"status": "ok"})
