"""Stateless nodes, proven: two gunicorn nodes in different working directories with no folder
in common, and a Celery worker in a third, all on the same PostgreSQL, Redis and S3 server.
A scanner pushes to node A, the worker makes the previews, a reviewer signed in on A claims,
reveals and decides on node B, a lead approves on A, and the worker sends the report to the
fake CyberTipline. Sessions, the scanner rate limit and sign-in lockouts hold across nodes."""

import hashlib
import json
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.conf import settings

from accounts import throttle
from devtools.synthetic import synthetic_image
from reports.api.throttle import window as rate_window
from reports.models import AuditEvent, Decision, Item, Report, Role

from .factories import PASSWORD, make_metadata, make_scanner, make_user, stored_files
from .support.fault_services import app_env, celery_worker, free_port, gunicorn, wait_for
from .support.s3 import S3Root

pytestmark = pytest.mark.django_db(transaction=True)
RATE = 5  # pushes a minute per scanner, counted across both nodes


@pytest.fixture
def processes():
    started = []
    yield started
    for process in reversed(started):
        process.stop()


@pytest.fixture
def cluster(tmp_path, s3_server, broker, processes, reporter_settings):
    from devtools.fake_cybertip import FakeCyberTipline

    fake = FakeCyberTipline(slow_seconds=0.2)
    base_url = fake.start()
    bucket = s3_server.new_bucket()
    shared = {**s3_server.settings(bucket), "CACHE_URL": settings.CELERY_BROKER_URL, "PYTHONPATH": str(settings.BASE_DIR),
              "TSREVIEW_CYBERTIP_BASE_URL": base_url, "TSREVIEW_CYBERTIP_USERNAME": fake.username,
              "TSREVIEW_CYBERTIP_PASSWORD": fake.password, "TSREVIEW_CYBERTIP_XSD": str(reporter_settings.TSREVIEW_CYBERTIP_XSD),
              "TSREVIEW_QA_SAMPLE_PERCENT": 0, "TSREVIEW_SCANNER_RATE": f"{RATE}/min"}
    if not str(shared["TSREVIEW_CYBERTIP_XSD"]).startswith("/"):
        shared["TSREVIEW_CYBERTIP_XSD"] = str((settings.BASE_DIR / shared["TSREVIEW_CYBERTIP_XSD"]).resolve())
    nodes = {}
    for name in ("a", "b", "worker"):
        home = tmp_path / f"node-{name}"
        home.mkdir()
        env = app_env(home / "media", TSREVIEW_VAR_DIR=home / "var", **shared)
        if name == "worker":
            env.update(LOG_FORMAT="json", LOG_LEVEL="INFO")
            processes.append(celery_worker(env, tmp_path / "worker.log", cwd=home))
            nodes[name] = home
        else:
            port = free_port()
            processes.append(gunicorn(port, env, tmp_path / f"gunicorn-{name}.log", cwd=home))
            nodes[name] = (f"http://127.0.0.1:{port}", home)
    yield nodes, fake, S3Root(s3_server.client, bucket), env
    fake.stop()


def sign_in(base: str, username: str, password: str = PASSWORD) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/login/")
    token = page.text.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    session.post(f"{base}/login/", data={"username": username, "password": password, "csrfmiddlewaretoken": token},
                 allow_redirects=False)
    return session


def post(session: requests.Session, url: str, headers=None, **kwargs) -> requests.Response:
    """A form post as the page makes it: the CSRF token from the cookie set by the sign-in."""
    headers = {**(headers or {}), "X-CSRFToken": session.cookies["csrftoken"]}
    return session.post(url, headers=headers, allow_redirects=False, **kwargs)


def _fresh_rate_window() -> None:
    """The scanner rate's windows are fixed by the clock (a minute): not across a boundary."""
    _, left = rate_window(60, time.time())
    if left < 20:
        time.sleep(left + 0.5)


def push(base: str, token: str, data: bytes, external_id: str) -> requests.Response:
    return requests.post(f"{base}/api/v1/submissions", headers={"Authorization": f"Bearer {token}"},
                         files={"file": ("upload.jpg", data, "image/jpeg")},
                         data={"metadata": json.dumps(make_metadata(external_id))}, timeout=30)


def test_a_push_on_one_node_is_reviewed_on_the_other_and_reported_by_the_worker(cluster, tmp_path):
    nodes, fake, bucket, env = cluster
    (a, home_a), (b, home_b) = nodes["a"], nodes["b"]
    token = make_scanner("crawler")
    make_user("rita", Role.REVIEWER)
    make_user("lena", Role.LEAD)
    data = synthetic_image(5)

    response = push(a, token, data, "two-nodes/1")
    assert response.status_code == 201, response.text
    assert wait_for(lambda: Item.objects.filter(state=Item.State.QUEUED).exists(), 90), (tmp_path / "worker.log").read_text()
    item = Item.objects.get()
    # The push's request id is on the worker's (JSON) log line of the task the push queued.
    request_id = response.headers["X-Request-ID"]
    lines = [json.loads(line) for line in (tmp_path / "worker.log").read_text().splitlines() if line.startswith("{")]
    assert any(line["request_id"] == request_id and line["message"] == f"previews made for item {item.pk}"
               for line in lines), lines

    rita = sign_in(a, "rita")  # signed in on A, works on B: the session is in the shared database
    claimed = post(rita, f"{b}/claim/")
    assert claimed.status_code == 302 and claimed.headers["Location"] == f"/review/{item.pk}/"
    assert "blur" in rita.get(f"{b}/review/{item.pk}/").text
    preview = rita.get(f"{b}/media/{item.pk}/preview/thumb/")
    assert preview.status_code == 200 and preview.headers["Content-Type"] == "image/jpeg"
    reveal = post(rita, f"{b}/media/{item.pk}/original/", data={"mode": "hold"})
    assert reveal.status_code == 200 and reveal.content == data  # read from the bucket by node B
    post(rita, f"{b}/views/{reveal.headers['X-View-Id']}/", data=json.dumps({"seconds": 1.0, "painted": True}),
         headers={"Content-Type": "application/json"})
    decided = post(rita, f"{b}/review/{item.pk}/decide/", data={"verdict": "confirmed", "classification": "A1"})
    assert decided.status_code == 302, decided.text[-2000:]
    assert Decision.objects.get(item=item).verdict == "confirmed"

    lena = sign_in(b, "lena")
    assert post(lena, f"{a}/reports/build/").status_code == 302
    report = Report.objects.get()
    assert post(lena, f"{a}/reports/{report.pk}/approve/").status_code == 302
    assert wait_for(lambda: Report.objects.get().state == Report.State.FINISHED, 90), (tmp_path / "worker.log").read_text()
    [sent] = fake.finished_reports()
    assert [f["md5"] for f in sent.files.values()] == [hashlib.md5(data).hexdigest()]
    assert AuditEvent.objects.filter(action="report.approved", actor_name="lena").exists()

    # Nothing was written to any node's own folder: the media is in the bucket, as ciphertext.
    for home in (home_a, home_b, nodes["worker"]):
        assert stored_files(home / "media") == []
    keys = bucket.keys()
    assert item.original_blob in keys and all(name in keys for name in item.previews.values())
    assert data[:256] not in (bucket / item.original_blob).read_bytes()

    # The worker answers Celery's inspect ping: the worker health check of docs/deploy.md.
    ping = subprocess.run([sys.executable, "-m", "celery", "-A", "tsreview", "inspect", "ping", "--timeout", "10"],
                          env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert ping.returncode == 0 and "pong" in ping.stdout, ping.stdout + ping.stderr
    for base in (a, b):
        assert requests.get(f"{base}/readyz", timeout=10).json() == {"status": "ok"}


def test_rate_limits_and_sign_in_lockouts_count_across_nodes(cluster):
    nodes, _, _, _ = cluster
    (a, _), (b, _) = nodes["a"], nodes["b"]
    token = make_scanner("crawler")
    data = synthetic_image(6)
    _fresh_rate_window()
    answers = [push((a, b)[n % 2], token, data, f"rate/{uuid.uuid4().hex}").status_code for n in range(RATE + 2)]
    assert answers[:RATE] == [201] * RATE and answers[RATE:] == [429, 429]  # one count, not one per node
    # At once, on both nodes: each push takes its count before anything else is checked, so
    # however they interleave exactly the rate's worth get through (DRF's own list of times,
    # read and written back by each request, could let parallel pushes through together).
    burst = make_scanner("burst")
    _fresh_rate_window()
    with ThreadPoolExecutor(max_workers=RATE * 3) as pool:
        statuses = list(pool.map(lambda n: push((a, b)[n % 2], burst, synthetic_image(100 + n), f"burst/{n}").status_code,
                                 range(RATE * 3)))
    assert sorted(statuses) == [201] * RATE + [429] * (RATE * 2), statuses

    make_user("rita", Role.REVIEWER)
    _, left = throttle._window()  # the lockout's windows are fixed by the clock: not across a boundary
    if left < 60:
        time.sleep(left + 1)
    for n in range(settings.TSREVIEW_LOGIN_FAILURES_PER_USER):
        sign_in((a, b)[n % 2], "rita", "wrong password")
    locked = sign_in(a, "rita")  # the right password now, on either node: still locked out
    assert "sessionid" not in locked.cookies and sign_in(b, "rita").cookies.get("sessionid") is None
