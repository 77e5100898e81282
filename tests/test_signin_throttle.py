"""Sign-in throttling (issue 13, finding 5): an atomic counter taken before the password check,
so parallel attempts cannot overrun the limit; X-Forwarded-For ignored unless the proxy is
listed; refused attempts audited once per burst."""

import re
import sys
import threading
import time

import pytest
import redis
import requests
from django.conf import settings as django_settings

from accounts import throttle
from reports.models import AuditEvent

from .factories import PASSWORD
from .support.fault_services import Process, app_env, free_port, listening, wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def not_at_a_window_edge():
    """The windows are fixed by the clock: a test does not start in a window's last minute
    (its attempts would be counted in two windows)."""
    _, left = throttle._window()
    if left < 60:
        time.sleep(left + 1)


def sign_in(client, username="rita", password="guess", **headers):
    return client.post("/login/", {"username": username, "password": password}, **headers)


def test_x_forwarded_for_is_ignored_unless_the_proxy_is_listed(client, reviewer, settings):
    assert settings.TSREVIEW_TRUSTED_PROXIES == []  # the default
    settings.TSREVIEW_LOGIN_FAILURES_PER_IP, settings.TSREVIEW_LOGIN_FAILURES_PER_USER = 3, 100
    for n in range(3):  # one client making up a new address each time is still one client
        sign_in(client, "nobody", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
    assert sign_in(client, "rita", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 429
    assert set(AuditEvent.objects.filter(action="user.login_failed").values_list("data__ip", flat=True)) == {"127.0.0.1"}

    settings.TSREVIEW_TRUSTED_PROXIES = ["127.0.0.1"]  # now listed: its header names the client
    assert sign_in(client, "rita", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 302


def test_a_burst_of_refused_attempts_is_one_audit_event(client, reviewer, settings):
    settings.TSREVIEW_LOGIN_FAILURES_PER_USER = 3
    statuses = [sign_in(client).status_code for _ in range(30)]
    assert statuses == [200] * 3 + [429] * 27
    assert AuditEvent.objects.filter(action="user.login_failed").count() == 3
    [throttled] = AuditEvent.objects.filter(action="user.login_throttled")
    assert throttled.data["username"] == "rita" and throttled.data["ip"] == "127.0.0.1"
    # Another name from the same address is its own burst.
    assert sign_in(client, "sam").status_code == 200


def test_a_successful_sign_in_does_not_use_up_the_limit(client, reviewer, settings):
    settings.TSREVIEW_LOGIN_FAILURES_PER_USER = 2
    for _ in range(3):  # more successes than the limit
        assert sign_in(client, password=PASSWORD).status_code == 302
        client.post("/logout/")
    assert sign_in(client).status_code == 200 and sign_in(client).status_code == 200
    assert sign_in(client, password=PASSWORD).status_code == 429  # two failures: even the right one waits


# --- 50 parallel attempts against gunicorn ------------------------------------------------------

LIMIT, ATTEMPTS, WORKERS = 5, 50, 3


def csrf_session(base: str) -> tuple[requests.Session, str]:
    session = requests.Session()
    page = session.get(f"{base}/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return session, token


@pytest.mark.django_db(transaction=True)
def test_fifty_parallel_wrong_passwords_on_gunicorn_check_at_most_the_limit(reviewer, media_root, tmp_path):
    cache_url = django_settings.CELERY_BROKER_URL  # this run's own Redis database
    store = redis.Redis.from_url(cache_url)
    for key in store.scan_iter("*tsreview:signin*"):
        store.delete(key)
    port = free_port()
    env = app_env(media_root, CACHE_URL=cache_url, TSREVIEW_LOGIN_FAILURES_PER_USER=LIMIT,
                  TSREVIEW_LOGIN_FAILURES_PER_IP=1000)
    server = Process([sys.executable, "-m", "gunicorn", "tsreview.wsgi", "--bind", f"127.0.0.1:{port}",
                      "--workers", str(WORKERS), "--threads", "4", "--timeout", "120"], env=env, log=tmp_path / "gunicorn.log")
    try:
        assert wait_for(lambda: listening(port) or not server.alive(), 60) and server.alive(), server.output()
        base = f"http://127.0.0.1:{port}"
        sessions = [csrf_session(base) for _ in range(ATTEMPTS)]
        start, statuses = threading.Barrier(ATTEMPTS), []

        def attempt(session, token):
            start.wait()
            response = session.post(f"{base}/login/", data={"username": "rita", "password": "wrong guess",
                                                            "csrfmiddlewaretoken": token}, timeout=60)
            statuses.append(response.status_code)

        threads = [threading.Thread(target=attempt, args=pair) for pair in sessions]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.stop()

    assert len(statuses) == ATTEMPTS and set(statuses) <= {200, 429}, statuses
    checked = AuditEvent.objects.filter(action="user.login_failed", data__username="rita").count()
    assert checked == statuses.count(200) and 1 <= checked <= LIMIT, statuses  # passwords actually checked
    assert statuses.count(429) == ATTEMPTS - checked
    assert AuditEvent.objects.filter(action="user.login_throttled").count() == 1  # one event for the burst
