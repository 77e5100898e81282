"""Loaded only into a fault test's first Celery worker (`celery worker --include
tests.support.fault_hooks`): when a preview task starts, it says so in a marker file and stalls, so the
test can kill the worker while it holds the task. Production code has no such hook."""

import os
import time
from pathlib import Path

from celery.signals import task_prerun


@task_prerun.connect
def stall_in_the_preview_task(sender=None, task_id=None, **kwargs):
    marker = os.environ.get("TSREVIEW_TEST_STALL_MARKER")
    if marker and sender is not None and sender.name == "reports.tasks.item_previews_task":
        Path(marker).write_text(task_id or "")
        time.sleep(float(os.environ.get("TSREVIEW_TEST_STALL_SECONDS", "600")))
