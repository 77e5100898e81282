"""Faults: a worker killed in the middle of a task, Redis down when a push arrives, PostgreSQL
gone during requests. Each starts its own processes (and stops them, whatever happens); the
shared Redis and PostgreSQL are never stopped."""

import http.client
import json
import subprocess
import sys
import time
import uuid

import jsonschema
import pytest
from django.db import OperationalError, connection

from devtools.synthetic import synthetic_image
from reports.api.serializers import ERROR_BODY
from reports.intake import storage
from reports.intake import submission as intake
from reports.models import AuditEvent, Item, Submission

from .factories import make_metadata, push, stored_files
from .support.fault_services import (
    TcpProxy,
    app_env,
    celery_worker,
    free_port,
    gunicorn,
    redis_server,
    wait_for,
)


@pytest.fixture
def processes():
    """Everything a test starts goes here and is stopped at the end, pass or fail."""
    started = []
    yield started
    for process in reversed(started):
        process.stop()


def item_state() -> str | None:
    item = Item.objects.first()
    return item and item.state


# --- A worker killed mid-task ------------------------------------------------------------------

VISIBILITY_TIMEOUT = 2  # seconds; production keeps the default 600

@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_in_the_middle_of_a_preview_task_leaves_it_to_the_next_worker(
        api, media_root, broker, processes, tmp_path):
    env = app_env(media_root, CELERY_VISIBILITY_TIMEOUT=VISIBILITY_TIMEOUT)
    marker = tmp_path / "task-started"
    first = celery_worker({**env, "TSREVIEW_TEST_STALL_MARKER": str(marker)}, tmp_path / "worker-1.log",
                          "--include", "tests.support.fault_hooks")
    processes.append(first)

    assert push(api).status_code == 201
    assert wait_for(marker.exists, 90), first.output()
    first.kill()  # SIGKILL while it holds the task

    assert item_state() == Item.State.NEW
    assert broker.hlen("unacked") == 1  # taken, never acknowledged (late acknowledgement)
    # The broker hands it out again once it has been unacknowledged for the visibility timeout.
    [(_, delivered_at)] = broker.zrange("unacked_index", 0, -1, withscores=True)
    time.sleep(max(0.0, delivered_at + VISIBILITY_TIMEOUT + 0.5 - time.time()))
    second = celery_worker(env, tmp_path / "worker-2.log")
    processes.append(second)
    assert wait_for(lambda: item_state() == Item.State.QUEUED, 120), second.output()

    item = Item.objects.get()
    assert set(item.previews) == {"thumb", "inspect-1", "inspect-2", "inspect-3"}
    assert all((media_root / name).is_file() for name in item.previews.values())
    assert AuditEvent.objects.filter(action="item.queued", item_id=item.pk).count() == 1
    assert wait_for(lambda: broker.hlen("unacked") == 0, 30)  # the second run was acknowledged


# --- Redis down when a push arrives --------------------------------------------------------------

def multipart(fields: dict) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, (content, content_type, filename) in fields.items():
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        parts.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: {content_type}\r\n\r\n".encode()
                     + content + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def call(port: int, method: str, path: str, token: str, body: bytes = b"", content_type: str = "") -> tuple[int, dict, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Bearer {token}"}
    if content_type:
        headers["Content-Type"] = content_type
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read() or b"null")
    finally:
        conn.close()


def http_push(port: int, token: str, seed: int, external_id: str):
    body, content_type = multipart({
        "file": (synthetic_image(seed), "image/jpeg", "image.jpg"),
        "metadata": (json.dumps(make_metadata(external_id)).encode(), "application/json", ""),
    })
    return call(port, "POST", "/api/v1/submissions", token, body, content_type)


@pytest.mark.django_db(transaction=True)
def test_a_push_while_redis_is_down_is_stored_and_previewed_once_redis_is_back(
        scanner_token, media_root, processes, tmp_path):
    redis_port, web_port = free_port(), free_port()  # our own Redis, not started yet
    env = app_env(media_root, CELERY_BROKER_URL=f"redis://127.0.0.1:{redis_port}/0")
    processes.append(gunicorn(web_port, env, tmp_path / "gunicorn.log"))

    status, _, body = http_push(web_port, scanner_token, 21, "while-redis-is-down")

    assert status == 201, body
    assert body["status"] == "received"
    item = Item.objects.get()
    assert item.state == Item.State.NEW and Submission.objects.count() == 1
    assert (media_root / item.original_blob).is_file()

    processes.append(redis_server(redis_port, tmp_path / "redis"))
    worker = celery_worker(env, tmp_path / "worker.log")
    processes.append(worker)
    # What beat runs every minute, sent through the broker to the worker; 0: don't wait for age.
    subprocess.run([sys.executable, "-m", "celery", "-A", "tsreview", "call", "reports.tasks.derivatives_sweep",
                    "--args", "[0]"], env=env, check=True, capture_output=True, timeout=60)

    assert wait_for(lambda: item_state() == Item.State.QUEUED, 120), worker.output()
    item.refresh_from_db()
    assert all((media_root / name).is_file() for name in item.previews.values())
    assert AuditEvent.objects.filter(action="item.previews_made", item_id=item.pk).count() == 1
    assert call(web_port, "GET", f"/api/v1/submissions/{body['id']}", scanner_token)[2]["status"] == "queued"


# --- PostgreSQL unreachable ---------------------------------------------------------------------

def assert_clean_503(status: int, headers: dict, body):
    assert status == 503, body
    assert headers.get("Retry-After") == "30"
    jsonschema.validate(body, ERROR_BODY)  # the documented error body
    assert "service" in body["errors"]


@pytest.mark.django_db(transaction=True)
def test_the_database_going_away_answers_503_stores_nothing_and_recovers(scanner_token, media_root, processes, tmp_path):
    proxy = TcpProxy(target_port=int(connection.settings_dict["PORT"] or 5432)).start()
    processes.append(proxy)
    db = connection.settings_dict
    web_port = free_port()
    env = app_env(media_root, DATABASE_URL=f"postgres://{db['USER']}@127.0.0.1:{proxy.port}/{db['NAME']}",
                  CELERY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0")  # no broker: previews wait for the sweep
    processes.append(gunicorn(web_port, env, tmp_path / "gunicorn.log"))
    status, _, first = http_push(web_port, scanner_token, 31, "before")
    assert status == 201, first
    files = sorted(stored_files(media_root))

    proxy.stop()  # the database goes away; the app's open connection breaks under it
    assert_clean_503(*http_push(web_port, scanner_token, 32, "during"))
    assert_clean_503(*http_push(web_port, scanner_token, 33, "during-2"))  # not connected at all
    assert_clean_503(*call(web_port, "GET", f"/api/v1/submissions/{first['id']}", scanner_token))

    assert Item.objects.count() == 1 and Submission.objects.count() == 1
    assert sorted(stored_files(media_root)) == files  # no orphaned file
    proxy.start()  # back: the next request connects again
    status, _, again = http_push(web_port, scanner_token, 32, "during")
    assert status == 201, again
    assert Item.objects.count() == 2 and Submission.objects.count() == 2


def fail(*args, **kwargs):
    raise OperationalError("server closed the connection unexpectedly")


@pytest.mark.parametrize("step", ["_item_get_or_create", "_submission_insert", "audit_record_many"])
@pytest.mark.django_db
def test_the_database_failing_after_the_file_was_written_removes_the_file_and_stores_nothing(
        api, monkeypatch, assert_nothing_stored, media_root, step):
    written = []
    writer = storage.media_store().writer

    def write_and_remember():  # the API streams the file part into the store
        written.append(writer())
        return written[-1]

    monkeypatch.setattr(storage.media_store(), "writer", write_and_remember)
    monkeypatch.setattr(intake, step, fail)

    response = push(api)

    assert_clean_503(response.status_code, response.headers, response.json())
    assert len(written) == 1  # the encrypted original had been written…
    assert not (media_root / written[0].name).exists()  # …and was removed
    assert_nothing_stored()


@pytest.mark.django_db
def test_the_database_failing_on_a_push_of_known_bytes_keeps_the_item_and_adds_nothing(api, monkeypatch, media_root):
    assert push(api, synthetic_image(41), make_metadata("first")).status_code == 201
    files, events = sorted(stored_files(media_root)), AuditEvent.objects.count()
    monkeypatch.setattr(intake, "_submission_insert", fail)

    response = push(api, synthetic_image(41), make_metadata("second"))

    assert_clean_503(response.status_code, response.headers, response.json())
    assert Item.objects.count() == 1 and Submission.objects.count() == 1
    assert sorted(stored_files(media_root)) == files and AuditEvent.objects.count() == events
