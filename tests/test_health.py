"""/healthz and /readyz: unauthenticated, cheap, and saying nothing but which part is down."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db.migrations.recorder import MigrationRecorder

from tsreview import health

from .conftest import owner_session

pytestmark = pytest.mark.django_db


def test_healthz_answers_anyone_without_touching_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.parametrize("store_kind", ["local", "s3"], indirect=True)
def test_readyz_is_ok_when_database_broker_and_media_answer(client, store_kind):
    response = client.get("/readyz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.parametrize("store_kind", ["s3"], indirect=True)
def test_readyz_names_the_missing_bucket_as_media_and_nothing_more(client, settings):
    settings.TSREVIEW_S3_BUCKET = "tsr-no-such-bucket-here"
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json() == {"status": "unavailable", "failing": ["media"]}
    assert b"no-such-bucket" not in response.content


def test_readyz_names_an_unreachable_broker(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["failing"] == ["broker"]
    assert b"127.0.0.1" not in response.content and b"6379" not in response.content


def test_readyz_refuses_while_a_migration_is_not_applied(client, monkeypatch):
    """As if the release with the newest migration were deployed before `migrate` ran. Only the
    owner may change django_migrations (the suite runs as the runtime role): the owner takes
    the row out and puts it back."""
    monkeypatch.setattr(health, "_migrated", False)
    last = MigrationRecorder.Migration.objects.filter(app="reports").order_by("-name").first()
    owner = owner_session()
    with owner.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE id = %s", [last.pk])
    try:
        response = client.get("/readyz")
    finally:
        with owner.cursor() as cursor:
            cursor.execute("INSERT INTO django_migrations (id, app, name, applied) VALUES (%s, %s, %s, %s)",
                           [last.pk, last.app, last.name, last.applied])
    assert response.status_code == 503 and response.json()["failing"] == ["database"]
    assert last.name.encode() not in response.content


def test_health_endpoints_take_no_writes_and_set_no_cookies(client):
    for url in ("/healthz", "/readyz"):
        assert client.post(url).status_code == 405
        response = client.get(url)
        assert not response.cookies and json.loads(response.content)["status"] == "ok"


def test_readyz_names_an_unreachable_database(tmp_path):
    """A node whose database does not answer: a process of its own, pointed at a port where
    nothing listens, asked for /readyz as a load balancer asks."""
    from .support.fault_services import free_port

    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"postgres://tsreview@127.0.0.1:{port}/tsreview",
           "TSREVIEW_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "tsreview.settings"}
    env.pop("DATABASE_OWNER_URL", None)
    done = own_process(env, "import django, json; django.setup(); from django.test import Client; "
                            "r = Client(raise_request_exception=False).get('/readyz'); "
                            "print(json.dumps([r.status_code, r.content.decode(), r.headers.get('Cache-Control')]))")
    status, body, cache = json.loads(done.stdout.strip().splitlines()[-1])
    assert status == 503 and json.loads(body) == {"status": "unavailable", "failing": ["database"]}
    assert str(port) not in body and "tsreview@" not in body and "no-cache" in cache


def test_the_embedded_database_lives_in_the_var_folder_it_is_given(tmp_path):
    """TSREVIEW_VAR_DIR moves all of the embedded default's state, its SQLite database too."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "DATABASE_OWNER_URL", "CELERY_BROKER_URL", "TSREVIEW_ENV")}
    env.update(TSREVIEW_VAR_DIR=str(tmp_path / "state"), DJANGO_SETTINGS_MODULE="tsreview.settings")
    done = own_process(env, "import django; django.setup(); from django.conf import settings; "
                            "print(settings.DATABASES['default']['NAME'])")
    database = tmp_path / "state" / "tsreview.sqlite3"
    assert done.stdout.strip().splitlines()[-1] == str(database.resolve())
    assert database.is_file() and database.stat().st_mode & 0o777 == 0o600


def test_the_embedded_mode_runs_tasks_in_process_without_a_broker_warning(tmp_path):
    """`make run` has no broker: tasks run in-process. Celery still takes a producer from its
    pool for each (as apply_async does), which on a URL without a host logged "No hostname was
    supplied. Reverting to default 'localhost'" at the demo's first task."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "DATABASE_OWNER_URL", "CELERY_BROKER_URL", "TSREVIEW_ENV")}
    env.update(TSREVIEW_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="tsreview.settings",
               DATABASE_URL=f"sqlite:///{tmp_path / 'embedded.sqlite3'}")  # not the checkout's var/
    done = own_process(env, "import django; django.setup(); from tsreview.celery import app; "
                            "p = app.producer_or_acquire(); p.__enter__(); p.__exit__(None, None, None); "
                            "print(app.conf.task_always_eager, app.connection_for_write().transport_cls)")
    assert done.stdout.split() == ["True", "memory"]
    assert "No hostname" not in done.stdout + done.stderr


def own_process(env: dict, code: str) -> subprocess.CompletedProcess:
    """Python code run in a process of its own (its own settings, from env), from the project's
    folder; it must exit cleanly."""
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=Path(__file__).resolve().parent.parent,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done
