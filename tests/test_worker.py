"""A real Celery worker on Redis makes the previews of a pushed item."""

import os
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.db import connection

from reports.models import AuditEvent, Item

from .factories import TEST_MEDIA_KEY, make_metadata, push


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


def _queued() -> int:
    return Item.objects.filter(state=Item.State.QUEUED).count()


def _other_backends() -> set[int]:
    """The PostgreSQL backends connected to this database other than this test's own."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pool", ["solo", "prefork"])
def test_the_worker_keeps_its_database_connection_between_tasks(api, media_root, broker, pool):
    """Celery's Django fix-up closed every connection before and after each task, so each
    preview task paid for a new PostgreSQL backend; the worker now keeps its connection as a web
    process does (closed when broken or older than CONN_MAX_AGE). Prefork, as production runs
    it: the pool's child opens its own and keeps it."""
    before = _other_backends()
    worker = start_worker(media_root, f"--pool={pool}")
    try:
        assert push(api, seed=1, metadata=make_metadata("first")).status_code == 201
        assert wait_for(lambda: _queued() == 1), worker_output(worker)
        after_first = _other_backends() - before
        assert after_first, "the worker closed its connection after the task"
        assert push(api, seed=2, metadata=make_metadata("second")).status_code == 201
        assert wait_for(lambda: _queued() == 2), worker_output(worker)
        assert after_first & (_other_backends() - before), "the second task ran on a new connection"
    finally:
        worker.terminate()
        worker.wait(timeout=30)


@pytest.mark.django_db(transaction=True)
def test_a_task_after_the_database_cut_the_workers_connection_still_runs(api, media_root, broker):
    """The kept connection is checked before a task uses it: a database restart or failover
    that cut it (here: its backend terminated) costs a reconnect, not the next task."""
    before = _other_backends()
    worker = start_worker(media_root)
    try:
        assert push(api, seed=1, metadata=make_metadata("first")).status_code == 201
        assert wait_for(lambda: _queued() == 1), worker_output(worker)
        kept = _other_backends() - before
        with connection.cursor() as cursor:
            for pid in kept:
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        assert wait_for(lambda: not (_other_backends() & kept))
        assert push(api, seed=2, metadata=make_metadata("second")).status_code == 201
        assert wait_for(lambda: _queued() == 2, seconds=30), worker_output(worker)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
