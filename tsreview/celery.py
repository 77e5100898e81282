import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tsreview.settings")

app = Celery("tsreview")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from tsreview.observability import connect_celery  # noqa: E402

connect_celery(app)  # a request's id carried into the tasks it queues
