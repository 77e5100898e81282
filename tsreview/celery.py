import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_process_init

from tsreview.observability import connect_celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tsreview.settings")

app = Celery("tsreview")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Celery's Django fix-up closes every database connection before and after each task, so each
# task opened a new PostgreSQL connection: a backend forked, authenticated and its caches warmed,
# which was most of PostgreSQL's CPU per pushed item (bench/ingest.py). Connections are kept as
# in a web request instead: Django's close_old_connections, before and after each task, closes
# one that is broken or older than CONN_MAX_AGE (the fix-up then only closes them on a new
# worker process, and after this many tasks).
app.conf.update({"CELERY_DB_REUSE_MAX": 1_000_000})


@task_prerun.connect
@task_postrun.connect
def _connections_tidy(task=None, **_):
    if not getattr(task.request, "is_eager", False):  # an eager task runs inside its caller's transaction
        from django.db import close_old_connections

        close_old_connections()


@worker_process_init.connect
def _decoding_forkserver_start(**_):
    """Each worker process forks its decoding children from a forkserver (intake.decode);
    started with the process, so that the first video does not wait for it."""
    from reports.intake import decode

    decode.warm()

connect_celery(app)  # a request's id carried into the tasks it queues
