import os

from celery import Celery
from celery.signals import worker_process_init

from tsreview.observability import connect_celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tsreview.settings")

app = Celery("tsreview")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _decoding_forkserver_start(**_):
    """Each worker process forks its decoding children from a forkserver (intake.decode);
    started with the process, so that the first video does not wait for it."""
    from reports.intake import decode

    decode.warm()

connect_celery(app)  # a request's id carried into the tasks it queues
