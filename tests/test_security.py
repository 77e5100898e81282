"""Sign-in (password + TOTP, throttling, idle expiry), headers and production settings."""

import os
import re
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.views import FAILED
from reports.models import AuditEvent

from .factories import PASSWORD, push

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent


def code(device, drift=0) -> str:
    return f"{totp(device.bin_key, drift=drift):06d}"


def sign_in(client, username="rita", password=PASSWORD, token=""):
    return client.post("/login/", {"username": username, "password": password, "token": token})


def test_the_demo_login_page_says_two_factor_is_off(client, settings):
    settings.TSREVIEW_REQUIRE_2FA = False
    assert "Two-factor sign-in is off in this embedded demo" in client.get("/login/").content.decode()


def test_with_two_factor_required_a_password_only_gets_to_enrolment(client, reviewer, settings):
    settings.TSREVIEW_REQUIRE_2FA = True
    assert "Two-factor sign-in is off" not in client.get("/login/").content.decode()
    assert sign_in(client).status_code == 302
    for url in ("/", "/settings/", "/lead/decisions/"):
        response = client.get(url)
        assert response.status_code == 302 and response.url == "/account/2fa/"
    page = client.get("/account/2fa/").content.decode()
    assert "<svg" in page and 'id="secret"' in page
    device = TOTPDevice.objects.get(user=reviewer)
    assert client.post("/account/2fa/", {"token": "000000" if code(device) != "000000" else "111111"}).status_code == 400
    assert not TOTPDevice.objects.get(pk=device.pk).confirmed
    # django-otp throttles a device after a wrong code: even the right one waits a moment.
    assert client.post("/account/2fa/", {"token": code(device)}).status_code == 400
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_timestamp=None, throttling_failure_count=0)
    assert client.post("/account/2fa/", {"token": code(device)}).status_code == 302
    assert TOTPDevice.objects.get(pk=device.pk).confirmed
    assert client.get("/").status_code == 200
    assert AuditEvent.objects.filter(action="user.2fa_enrolled", actor_name="rita").exists()


def test_an_enrolled_person_needs_the_current_code(client, reviewer, settings):
    settings.TSREVIEW_REQUIRE_2FA = True
    device = TOTPDevice.objects.create(user=reviewer, name="phone", confirmed=True)
    missing = sign_in(client)
    wrong_password = sign_in(client, password="not the password")
    assert missing.status_code == wrong_password.status_code == 200
    # The right password without its code reads exactly like a wrong password (issue 13).
    assert FAILED in missing.content.decode() and FAILED in wrong_password.content.decode()
    assert missing.content.decode().replace(str(missing.context["csrf_token"]), "") == \
        wrong_password.content.decode().replace(str(wrong_password.context["csrf_token"]), "")
    wrong = sign_in(client, token="12345" if code(device) != "012345" else "54321")
    assert FAILED in wrong.content.decode()
    assert client.get("/").status_code == 302  # still signed out
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_timestamp=None, throttling_failure_count=0)
    assert sign_in(client, token=code(device)).status_code == 302
    assert client.get("/").status_code == 200
    assert AuditEvent.objects.get(action="user.login").data["second_factor"] is True
    assert AuditEvent.objects.filter(action="user.login_failed", data__reason="code").count() == 2
    assert AuditEvent.objects.filter(action="user.login_failed", data__reason="password").count() == 1


def test_repeated_failures_lock_sign_in_even_with_the_right_password(client, reviewer, settings):
    settings.TSREVIEW_LOGIN_FAILURES_PER_USER = 5
    for _ in range(5):
        assert sign_in(client, password="guess").status_code == 200
    locked = sign_in(client)
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.content.decode()
    assert client.get("/").status_code == 302
    assert AuditEvent.objects.filter(action="user.login_throttled", data__username="rita").exists()


def test_old_failures_no_longer_count(client, reviewer, settings):
    settings.TSREVIEW_LOGIN_FAILURES_PER_USER = 2
    sign_in(client, password="guess"), sign_in(client, password="guess")
    assert sign_in(client).status_code == 429
    # Half an hour later (the log is append-only, so the clock moves instead).
    later = timezone.now() + timedelta(minutes=settings.TSREVIEW_LOGIN_LOCKOUT_MINUTES + 1)
    from unittest import mock

    with mock.patch("django.utils.timezone.now", return_value=later):
        assert sign_in(client).status_code == 302


def test_an_idle_session_expires(client, reviewer, settings):
    assert settings.SESSION_COOKIE_AGE == 30 * 60 and settings.SESSION_SAVE_EVERY_REQUEST
    client.force_login(reviewer)
    assert client.get("/").status_code == 200
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get("/")
    assert response.status_code == 302 and response.url.startswith("/login/")


def test_pages_carry_strict_security_headers(client, reviewer):
    client.force_login(reviewer)
    response = client.get("/")
    csp = response["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response["Cache-Control"]
    sign_in_response = sign_in(client)
    assert sign_in_response.cookies["sessionid"]["httponly"]


def test_templates_and_scripts_have_no_inline_code_or_style():
    for path in list((ROOT / "templates").rglob("*.html")):
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), f"inline script in {path.name}"
        assert not re.search(r"\sstyle\s*=", text), f"style attribute in {path.name}"
        assert "<style" not in text, f"style element in {path.name}"
        assert not re.search(r"\son[a-z]+\s*=", text), f"inline event handler in {path.name}"


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = {
        **os.environ,
        "TSREVIEW_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "review.example.org",
        "TSREVIEW_MEDIA_KEY": "a" * 43 + "=",
        "TSREVIEW_VAR_DIR": str(tmp_path),
        # Two roles and the audit anchors (docs/security.md); tests/test_audit.py checks each warning.
        "DATABASE_URL": "postgres://tsreview_app:pw@db.example.org/tsreview",
        "DATABASE_OWNER_URL": "postgres://tsreview_owner:pw@db.example.org/tsreview",
        "TSREVIEW_AUDIT_KEY": "prod1:" + "b" * 43 + "=",
        "TSREVIEW_AUDIT_CHECKPOINTS": str(tmp_path / "audit-checkpoints.jsonl"),
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set by the browser tests' conftest, never in deployment
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_requires_two_factor_and_a_secret_key(tmp_path):
    script = "from django.conf import settings; print(settings.TSREVIEW_REQUIRE_2FA, settings.SESSION_COOKIE_SECURE, settings.SECURE_HSTS_SECONDS)"
    env = {**os.environ, "TSREVIEW_ENV": "production", "SECRET_KEY": "x" * 60, "DJANGO_SETTINGS_MODULE": "tsreview.settings"}
    ok = subprocess.run([sys.executable, "-c", f"import django; django.setup(); {script}"], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=60)
    assert ok.stdout.split() == ["True", "True", "31536000"], ok.stderr
    del env["SECRET_KEY"]
    missing = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "SECRET_KEY must be set in production" in missing.stderr


@pytest.mark.parametrize("headers, status", [
    ({"HTTP_ORIGIN": "null", "HTTP_SEC_FETCH_SITE": "same-origin"}, 302),  # our own page, no referrer sent
    ({"HTTP_ORIGIN": "null"}, 403),
    ({"HTTP_ORIGIN": "null", "HTTP_SEC_FETCH_SITE": "cross-site"}, 403),
    ({"HTTP_ORIGIN": "https://evil.example", "HTTP_SEC_FETCH_SITE": "same-origin"}, 403),
])
def test_form_posts_are_checked_for_csrf_even_without_a_referrer(reviewer, headers, status):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.get("/login/")
    token = client.cookies["csrftoken"].value
    response = client.post("/login/", {"username": "rita", "password": PASSWORD, "csrfmiddlewaretoken": token}, **headers)
    assert response.status_code == status


def test_an_upload_above_the_old_spooling_threshold_never_touches_the_disk(api, settings, tmp_path, monkeypatch):
    """Django spools uploads over FILE_UPLOAD_MAX_MEMORY_SIZE (4 MB by default) to a plaintext
    temporary file; here they stay in memory up to the upload limit."""
    import io as _io
    import os as _os

    from django.core.files import uploadedfile
    from PIL import Image as _Image

    spooled = []

    def spool(self, *args, **kwargs):
        spooled.append(args)
        raise AssertionError("an upload was spooled to a temporary file")

    monkeypatch.setattr(uploadedfile.TemporaryUploadedFile, "__init__", spool)
    spool_dir = tmp_path / "uploads"
    spool_dir.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(spool_dir)
    noise = _Image.frombytes("RGB", (1600, 1600), _os.urandom(1600 * 1600 * 3))  # synthetic noise
    out = _io.BytesIO()
    noise.save(out, "PNG")
    data = out.getvalue()
    assert len(data) > 6 * 1024 * 1024
    response = push(api, data, content_type="image/png")
    assert response.status_code == 201, response.json()
    assert spooled == [] and list(spool_dir.iterdir()) == []
