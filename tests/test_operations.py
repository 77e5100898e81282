"""Operations: request ids, JSON log lines, scrubbed error reports, graceful shutdown."""

import base64
import json
import logging
import os
import signal
import socket
import time
import uuid

import pytest
from rest_framework.test import APIClient

from devtools.synthetic import synthetic_image
from reports.intake import submission
from tsreview.observability import JsonFormatter, RequestIdFilter, logging_config, request_id_var

from .factories import make_metadata, upload
from .support.fault_services import app_env, free_port, gunicorn, wait_for

pytestmark = pytest.mark.django_db


def test_every_response_has_a_request_id_and_a_trusted_proxy_may_set_it(client, settings):
    first, second = client.get("/healthz"), client.get("/healthz")
    assert len(first["X-Request-ID"]) == 32 and first["X-Request-ID"] != second["X-Request-ID"]
    assert client.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a").get("X-Request-ID") != "lb-7f3a"  # no proxy is trusted by default
    settings.TSREVIEW_TRUSTED_PROXIES = ["127.0.0.1"]  # the test client's address, listed as the proxy
    assert client.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a").get("X-Request-ID") == "lb-7f3a"
    assert client.get("/healthz", HTTP_X_REQUEST_ID="bad id\n").get("X-Request-ID") != "bad id\n"
    settings.TSREVIEW_TRUSTED_PROXIES = []  # the test client's 127.0.0.1 is no longer a proxy
    assert client.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a").get("X-Request-ID") != "lb-7f3a"


def test_json_log_lines_carry_the_request_id():
    assert logging_config(fmt="json", level="INFO")["formatters"]["default"] == {"()": "tsreview.observability.JsonFormatter"}
    record = logging.LogRecord("reports.tasks", logging.INFO, __file__, 1, "previews made for item %s", (7,), None)
    token = request_id_var.set("abc123")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "previews made for item 7" and line["request_id"] == "abc123"
    assert line["level"] == "INFO" and line["logger"] == "reports.tasks" and line["time"].endswith("Z")


@pytest.fixture
def error_reports():
    """Sentry's SDK, initialised as SENTRY_DSN does, sending to a local transport."""
    import sentry_sdk
    from sentry_sdk.transport import Transport

    from tsreview.observability import sentry_init

    class Capture(Transport):
        def __init__(self, options=None):
            super().__init__(options)
            self.sent = []

        def capture_envelope(self, envelope):
            self.sent.append(envelope.serialize())

    transport = Capture()
    sentry_init("https://public@errors.example.invalid/1", transport=transport)
    yield transport.sent
    sentry_sdk.init()  # off again


def test_an_error_report_carries_no_media_metadata_or_personal_data(scanner_token, monkeypatch, error_reports):
    def broken(*args, **kwargs):
        raise RuntimeError("intake step failed")

    monkeypatch.setattr(submission, "_submission_insert", broken)
    api = APIClient(raise_request_exception=False)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {scanner_token}")
    data = synthetic_image(3)
    metadata = make_metadata("victim-7781", provenance={**make_metadata()["provenance"], "source_type": "user_upload",
                                                         "uploader": {"email": "victim@example.org", "screen_name": "vic_tim",
                                                                      "ip_events": [{"ip": "198.51.100.23", "event": "Upload",
                                                                                     "at": "2026-09-01T10:00:00Z"}]}})
    response = api.post("/api/v1/submissions?who=victim@example.org", {"file": upload(data, name="victim-photo.jpg"),
                        "metadata": json.dumps(metadata)}, format="multipart", HTTP_COOKIE="sessionid=s3cr3t")
    assert response.status_code == 500
    import sentry_sdk

    sentry_sdk.flush()
    sent = b"".join(error_reports)
    assert b"RuntimeError" in sent and b"intake step failed" in sent and b"/api/v1/submissions" in sent
    assert response["X-Request-ID"].encode() in sent
    secrets = [scanner_token, "victim", "198.51.100.23", "vic_tim", "s3cr3t", "Acme Data", "host.example", "81723",
               base64.b64encode(data[:48]).decode(), data[:48].hex()]
    assert [s for s in secrets if s.encode() in sent] == []
    assert data[:48] not in sent


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


@pytest.mark.django_db(transaction=True)
def test_gunicorn_finishes_an_upload_in_flight_when_told_to_stop(scanner_token, media_root, tmp_path):
    """SIGTERM to the web server (a deploy, a scale-in): the upload being received completes
    (201) and the server exits afterwards, instead of cutting it off."""
    port = free_port()
    server = gunicorn(port, app_env(media_root), tmp_path / "gunicorn.log")
    try:
        assert wait_for(lambda: _answers(port), 60), server.output()  # the worker has loaded the app
        body_boundary = uuid.uuid4().hex
        parts = [(b'Content-Disposition: form-data; name="metadata"\r\n\r\n', json.dumps(make_metadata("graceful/1")).encode()),
                 (b'Content-Disposition: form-data; name="file"; filename="u.jpg"\r\nContent-Type: image/jpeg\r\n\r\n',
                  synthetic_image(4))]
        body = b"".join(b"--" + body_boundary.encode() + b"\r\n" + head + value + b"\r\n" for head, value in parts)
        body += b"--" + body_boundary.encode() + b"--\r\n"
        head = (f"POST /api/v1/submissions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {scanner_token}\r\n"
                f"Content-Type: multipart/form-data; boundary={body_boundary}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(head + body[: len(body) // 2])
            time.sleep(1)  # ordering only: the worker has taken the connection and is reading the body
            os.kill(server.pid, signal.SIGTERM)  # the master: it stops its workers gracefully
            sock.sendall(body[len(body) // 2:])
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 201"), answer[:500]
        assert wait_for(lambda: not server.alive(), 40), server.output()
        assert server.popen.returncode == 0
    finally:
        server.stop()


@pytest.mark.django_db(transaction=True)
def test_a_worker_told_to_stop_finishes_the_task_it_holds_first(api, media_root, broker, tmp_path):
    """SIGTERM to a Celery worker is a warm shutdown: the preview task it is running completes
    (the item is queued, the task acknowledged) before the worker exits."""
    from reports.models import Item

    from .support.fault_services import celery_worker

    marker = tmp_path / "task-started"
    worker = celery_worker(app_env(media_root, TSREVIEW_TEST_STALL_MARKER=marker, TSREVIEW_TEST_STALL_SECONDS=3),
                           tmp_path / "worker.log", "--include", "tests.support.fault_hooks")
    try:
        from .factories import push

        assert push(api).status_code == 201
        assert wait_for(marker.exists, 90), worker.output()
        os.kill(worker.pid, signal.SIGTERM)  # while the task is running (it stalls 3 s)
        assert wait_for(lambda: not worker.alive(), 60), worker.output()
        assert worker.popen.returncode == 0, worker.output()
        assert Item.objects.get().state == Item.State.QUEUED  # finished before exiting
        assert broker.hlen("unacked") == 0  # and acknowledged: nobody will run it again
    finally:
        worker.stop()


def test_a_web_worker_imports_every_view_as_it_boots_not_in_its_first_request(media_root):
    """gunicorn loads tsreview.wsgi in each worker before the worker accepts a connection; the
    URLconf and the views under it are imported then, so a restarted worker's first push or page
    does not wait for them."""
    import subprocess
    import sys

    probe = ("import sys; before = 'reports.api.views' in sys.modules; import tsreview.wsgi; "
             "print(before, 'reports.api.views' in sys.modules, 'reports.web.review' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], env=app_env(media_root), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True", "True"]
