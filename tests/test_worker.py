"""A real Celery worker on Redis makes the previews of a pushed item."""

import os
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.db import connection

from reports.models import AuditEvent, Item

from .factories import TEST_MEDIA_KEY, push


def worker_env(media_root) -> dict:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {**os.environ, "DATABASE_URL": url, "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "TSREVIEW_MEDIA_ROOT": str(media_root), "TSREVIEW_MEDIA_KEY": TEST_MEDIA_KEY}


def start_worker(media_root, *extra) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tsreview", "worker", "--pool=solo", "--concurrency=1",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=WARNING", *extra],
        env=worker_env(media_root), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_for(predicate, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_makes_previews_and_queues_the_item(api, media_root, broker):
    worker = start_worker(media_root)
    try:
        response = push(api)
        assert response.status_code == 201
        assert response.json()["status"] == "received"
        assert wait_for(lambda: Item.objects.get().state == Item.State.QUEUED), worker_output(worker)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    item = Item.objects.get()
    assert item.previews and all((media_root / name).exists() for name in item.previews.values())
    assert AuditEvent.objects.filter(action="item.queued", item_id=item.pk, actor_kind="system").exists()
    assert api.get(f"/api/v1/submissions/{response.json()['id']}").json()["status"] == "queued"


def worker_output(worker) -> str:
    worker.terminate()
    return worker.communicate(timeout=30)[0].decode(errors="replace")[-3000:]
