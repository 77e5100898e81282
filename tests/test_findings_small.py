"""The smaller findings of the attack on a running copy (issue 13, finding 7): what a scanner
learns from another scanner's bytes, a mistyped TSREVIEW_ENV, /admin/ for a signed-in
non-admin, the embedded database's file mode, and where a lead goes after an escalation."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from rest_framework.test import APIClient

from devtools.synthetic import synthetic_image
from reports.intake.previews import item_previews_make
from reports.models import Claim, Item, Report
from reports.reporting import drafting, lifecycle

from .factories import decide_next, look_via, make_confirmed, make_item, make_metadata, push

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent
FIRST_PUSH_KEYS = {"duplicate", "status", "report", "provenance_missing"}


def scanner(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_a_scanner_pushing_another_scanners_reported_bytes_learns_nothing_of_them(
        api, reviewer, lead, cybertip, django_capture_on_commit_callbacks):
    item = make_confirmed(1, reviewer)  # pushed by another scanner (the fixture's), confirmed…
    report = drafting.report_draft_build(actor=lead)[0]
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.report_approve(actor=lead, report=report)
    report.refresh_from_db()
    assert report.state == Report.State.FINISHED and report.ncmec_report_id  # …and reported to NCMEC

    first_push = push(api, data=synthetic_image(99, size=(320, 240)), metadata=make_metadata("fresh"))
    theirs = push(api, data=synthetic_image(1, size=(320, 240)), metadata=make_metadata("known"))

    assert first_push.status_code == theirs.status_code == 201
    assert theirs.json()["item"] == item.sha256  # the same bytes, one item…
    looks = {k: first_push.json()[k] for k in FIRST_PUSH_KEYS}
    assert {k: theirs.json()[k] for k in FIRST_PUSH_KEYS} == looks  # …answered as a first push
    assert looks["duplicate"] is False and looks["report"] is None and looks["status"] == "received"
    again = api.get(f"/api/v1/submissions/{theirs.json()['id']}").json()
    assert (again["duplicate"], again["status"], again["report"]) == (False, "queued", None)
    replay = push(api, data=synthetic_image(1, size=(320, 240)), metadata=make_metadata("known"))
    assert replay.status_code == 200 and (replay.json()["status"], replay.json()["report"]) == ("queued", None)
    assert str(report.ncmec_report_id) not in theirs.content.decode() + str(again)

    # The same scanner pushing its own bytes again is told so.
    mine_again = push(api, data=synthetic_image(1, size=(320, 240)), metadata=make_metadata("known-2"))
    assert mine_again.json()["duplicate"] is True


def test_a_decision_made_after_the_scanners_own_push_is_its_to_learn(api, other_scanner_token, reviewer, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    data = synthetic_image(5)
    first = push(scanner(other_scanner_token), data=data, metadata=make_metadata("theirs"))
    mine = push(api, data=data, metadata=make_metadata("mine"))
    item_previews_make(item_id=Item.objects.get().pk)
    assert first.json()["duplicate"] is False and mine.json()["duplicate"] is False
    decide_next(reviewer, "not_csam", reason="adult")
    assert api.get(f"/api/v1/submissions/{mine.json()['id']}").json()["status"] == "not_confirmed"


@pytest.mark.parametrize("value", ["prod", "Production"])
def test_a_mistyped_tsreview_env_refuses_to_start(value, tmp_path):
    env = {**os.environ, "TSREVIEW_ENV": value, "SECRET_KEY": "x" * 60, "DJANGO_SETTINGS_MODULE": "tsreview.settings",
           "TSREVIEW_VAR_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"TSREVIEW_ENV={value!r} is not a known mode" in result.stderr


def test_known_tsreview_env_values_start(tmp_path):
    script = "import django; django.setup(); from django.conf import settings; print(settings.PRODUCTION)"
    for value, production in (("production", "True"), ("embedded", "False")):
        env = {**os.environ, "TSREVIEW_ENV": value, "SECRET_KEY": "x" * 60, "DJANGO_SETTINGS_MODULE": "tsreview.settings"}
        result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert result.stdout.strip() == production, result.stderr


def test_admin_for_a_signed_in_non_admin_is_a_clear_403_not_a_loop(rita, lena):
    for person in (rita, lena):  # a reviewer, a lead: neither is an admin
        response = person.get("/admin/", follow=True)  # the test client raises on a redirect loop
        assert response.status_code == 403
        assert "Admins only" in response.content.decode()
        assert len(response.redirect_chain) == 1
    anonymous = Client().get("/admin/", follow=True)
    assert anonymous.status_code == 200 and anonymous.redirect_chain[-1][0].startswith("/login/?next=")


def test_the_embedded_sqlite_file_is_only_readable_by_its_owner(tmp_path):
    folder = tmp_path / "var"
    database = folder / "tsreview.sqlite3"
    script = ("import django, os, stat; django.setup(); from django.db import connection; "
              "connection.cursor().execute('create table t (x integer)'); "
              "connection.cursor().execute('insert into t values (1)'); "  # while open: the -wal and -shm files too
              f"print(sorted((p, oct(stat.S_IMODE(os.stat(os.path.join({str(folder)!r}, p)).st_mode))) "
              f"for p in os.listdir({str(folder)!r})))")
    env = {k: v for k, v in os.environ.items() if k not in ("TSREVIEW_ENV", "CELERY_BROKER_URL")}
    env.update(DATABASE_URL=f"sqlite:///{database}", DJANGO_SETTINGS_MODULE="tsreview.settings")
    old_umask = os.umask(0o022)  # a usual default: files 0644, folders 0755
    try:
        result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    finally:
        os.umask(old_umask)
    assert result.returncode == 0, result.stderr
    modes = dict(eval(result.stdout))  # noqa: S307 — our own child's printed list
    assert set(modes) == {database.name, f"{database.name}-wal", f"{database.name}-shm"}
    assert set(modes.values()) == {"0o600"}, modes
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700

    database.chmod(0o644)  # made by an older version: narrowed on the next start
    subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env, check=True, timeout=60)
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


@pytest.mark.parametrize("action", ["decide", "skip"])
def test_after_an_escalation_a_lead_goes_back_to_the_escalations_not_the_queue(client, reviewer, lead, settings, action):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    escalated = make_item(1)
    decide_next(reviewer, "escalated", note="Could be an adult.")
    ordinary = make_item(2)  # waiting in the ordinary queue
    client.force_login(lead)
    assert client.post("/lead/escalations/claim/").url == f"/review/{escalated.pk}/"
    if action == "decide":
        look_via(client, escalated.pk)
        response = client.post(f"/review/{escalated.pk}/decide/", {"verdict": "not_csam", "reason": "adult", "note": "Adult."})
        assert Item.objects.get(pk=escalated.pk).state == Item.State.DECIDED
    else:
        response = client.post(f"/review/{escalated.pk}/skip/")
    assert response.status_code == 302 and response.url == "/lead/escalations/"
    assert Item.objects.get(pk=ordinary.pk).state == Item.State.QUEUED
    assert not Claim.objects.filter(user=lead, item=ordinary).exists()


def test_a_reviewer_still_gets_the_next_item_after_deciding(client, reviewer, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    first, second = make_item(1, priority=10), make_item(2, priority=1)
    client.force_login(reviewer)
    assert client.post("/claim/").url == f"/review/{first.pk}/"
    look_via(client, first.pk)
    response = client.post(f"/review/{first.pk}/decide/", {"verdict": "not_csam", "reason": "adult"})
    assert response.url == f"/review/{second.pk}/"
