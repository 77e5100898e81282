"""Holes found by review, each closed and kept closed."""

import csv
import io
import json

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from reports.errors import Refused
from reports.models import AuditEvent, Claim, ExposureDay, Item, Report, ReportFile, Submission, WellnessPolicy
from reports.reporting import drafting, lifecycle, preservation, selectors
from reports.reporting.checklist import report_checklist
from reports.reporting.lifecycle import report_send
from reports.review import queue

from .factories import PASSWORD, decide_next, look_via, make_confirmed, make_item, make_metadata, push

pytestmark = pytest.mark.django_db


# --- Reports and overturns ----------------------------------------------------------------------

def test_overturning_a_confirmation_takes_the_file_out_of_its_draft(client, reviewer, lead, reporter_settings):
    item = make_confirmed(1, reviewer)
    report = drafting.report_draft_build(actor=lead)[0]
    client.force_login(lead)
    look_via(client, item.pk)
    response = client.post(f"/lead/items/{item.pk}/overturn/", {"verdict": "not_csam", "reason": "adult", "note": "An adult."})
    assert response.status_code == 302
    assert not ReportFile.objects.filter(item=item).exists()
    assert not Report.objects.filter(pk=report.pk).exists()  # the empty draft went too
    assert AuditEvent.objects.filter(action="report.file_removed", item_id=item.pk).exists()
    assert not selectors.unreported_sightings().filter(item=item).exists()


def test_an_item_in_a_report_being_sent_cannot_be_overturned(client, lead, approved):  # noqa: F811
    item = approved.files.get().item
    client.force_login(lead)
    look_via(client, item.pk)
    response = client.post(f"/lead/items/{item.pk}/overturn/", {"verdict": "not_csam", "reason": "adult", "note": "x"})
    assert response.status_code == 400 and "being sent" in response.content.decode()
    assert Item.objects.get(pk=item.pk).verdict == "confirmed"
    assert approved.files.count() == 1


def test_a_file_that_no_longer_stands_confirmed_blocks_approval(reviewer, lead, reporter_settings, settings):
    item = make_confirmed(1, reviewer)
    report = drafting.report_draft_build(actor=lead)[0]
    Item.objects.filter(pk=item.pk).update(purged_at="2026-01-01T00:00:00Z")
    checklist = report_checklist(report)
    assert checklist.blocking and "media was destroyed" in checklist.files[0].problem
    with pytest.raises(Refused):
        lifecycle.report_approve(actor=lead, report=report)


def test_a_file_that_was_never_approved_is_never_sent(approved, cybertip, reviewer, lead):  # noqa: F811
    # What a draft build racing the approval could once do: add a file after the lead approved.
    other = make_confirmed(2, reviewer)
    ReportFile.objects.create(report=approved, submission=other.submissions.get(), item=other)
    assert report_send(report_id=approved.pk) == Report.State.FAILED
    approved.refresh_from_db()
    assert "never approved" in approved.failure
    assert not cybertip.reports  # nothing was opened at the fake NCMEC


def test_an_invalid_move_moves_nothing(client, reviewer, lead, reporter_settings):
    make_confirmed(1, reviewer)
    report = drafting.report_draft_build(actor=lead)[0]
    report_file = report.files.get()
    client.force_login(lead)
    response = client.post(f"/reports/files/{report_file.pk}/move/", {})
    assert response.status_code == 302 and response.url == f"/reports/{report.pk}/"
    assert ReportFile.objects.get(pk=report_file.pk).report_id == report.pk
    assert Report.objects.count() == 1


def test_the_same_bytes_pushed_after_a_purge_come_back_for_review_and_reporting(api, reviewer, lead, reporter_settings,
                                                                                django_capture_on_commit_callbacks):
    from devtools.synthetic import synthetic_image

    item = make_confirmed(1, reviewer)
    preservation.material_destroy(actor=lead, item=item, reason="Retention test")
    data = synthetic_image(1, size=(320, 240))  # make_item's bytes for seed 1
    with django_capture_on_commit_callbacks(execute=True):
        response = push(api, data, metadata=make_metadata("again/1"))
    assert response.status_code == 201 and response.json()["item"] == item.sha256
    item.refresh_from_db()
    assert item.purged_at is None and item.previews and item.state == Item.State.DECIDED
    assert AuditEvent.objects.filter(action="item.restored", item_id=item.pk).exists()
    again = Submission.objects.get(external_id="again/1")
    assert selectors.unreported_sightings().filter(pk=again.pk).exists()


# --- Sign-in -----------------------------------------------------------------------------------

def sign_in(client, username, password="guess", **headers):
    return client.post("/login/", {"username": username, "password": password}, **headers)


def test_spellings_of_one_name_share_its_lockout(client, reviewer, settings):
    settings.TSREVIEW_LOGIN_FAILURES_PER_USER = 3
    for spelling in (" rita", "rita  ", "ｒｉｔａ"):  # all sign in as rita
        sign_in(client, spelling)
    assert sign_in(client, "rita", PASSWORD).status_code == 429
    assert set(AuditEvent.objects.filter(action="user.login_failed").values_list("data__username", flat=True)) == {"rita"}


def test_behind_the_proxy_each_client_is_counted_apart(client, reviewer, second_reviewer, settings):
    settings.TSREVIEW_LOGIN_FAILURES_PER_IP, settings.TSREVIEW_LOGIN_FAILURES_PER_USER = 3, 100
    settings.TSREVIEW_TRUSTED_PROXIES = ["127.0.0.1"]  # the proxy is listed (none is by default)
    for _ in range(3):
        sign_in(client, "nobody", HTTP_X_FORWARDED_FOR="198.51.100.9")
    assert sign_in(client, "sam", HTTP_X_FORWARDED_FOR="198.51.100.9").status_code == 429
    other = sign_in(client, "sam", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.20")
    assert other.status_code == 302  # another client behind the same proxy is not locked out
    # A forwarded address from an untrusted peer is ignored.
    client.logout()
    sign_in(client, "nobody", REMOTE_ADDR="192.0.2.50", HTTP_X_FORWARDED_FOR="203.0.113.99")
    assert AuditEvent.objects.filter(action="user.login_failed").last().data["ip"] == "192.0.2.50"


def test_a_password_only_session_after_enrolment_elsewhere_signs_out_instead_of_looping(client, reviewer, settings):
    settings.TSREVIEW_REQUIRE_2FA = True
    client.force_login(reviewer)  # signed in by password only
    TOTPDevice.objects.create(user=reviewer, name="phone", confirmed=True)  # enrolled in another browser
    assert client.get("/").url == "/account/2fa/"
    response = client.get("/account/2fa/")
    assert response.status_code == 302 and response.url == "/login/"
    home = client.get("/")
    assert home.status_code == 302 and home.url.startswith("/login/")


# --- Small things --------------------------------------------------------------------------------

def test_a_lead_at_the_cap_is_told_so_when_taking_an_escalation(client, lead, reviewer, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    make_item(1)
    decide_next(reviewer, "escalated", note="unsure")
    ExposureDay.objects.create(user=lead, day=timezone.localdate(),
                               unblurred_seconds=WellnessPolicy.current().daily_cap_seconds)
    client.force_login(lead)
    response = client.post("/lead/escalations/claim/", follow=True)
    assert response.status_code == 200 and "exposure limit" in response.content.decode()
    assert not Claim.objects.filter(user=lead).exists()


def test_exported_notes_cannot_become_spreadsheet_formulas(client, lead, reviewer, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    make_item(1)
    decide_next(reviewer, "escalated", note='=HYPERLINK("https://evil.example","x")')
    client.force_login(lead)
    rows = list(csv.DictReader(io.StringIO(b"".join(client.get("/lead/decisions.csv").streaming_content).decode())))
    assert rows[0]["note"].startswith("'=HYPERLINK")


def test_an_infinite_reveal_length_is_refused(client, reviewer, queued_items):
    client.force_login(reviewer)
    item = queue.item_claim(user=reviewer).item
    view_id = client.post(f"/media/{item.pk}/original/", {"mode": "hold"})["X-View-Id"]
    response = client.post(f"/views/{view_id}/", '{"seconds": 1e999}', content_type="application/json")
    assert response.status_code == 400
    assert json.loads(response.content)["errors"]["seconds"]


def test_giving_someone_a_role_in_the_admin_is_audited(client, reviewer):
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("ada", "ada@example.org", "an admin passphrase")
    lead_group = Group.objects.get_or_create(name="lead")[0]
    client.force_login(admin)
    page = client.get(f"/admin/auth/user/{reviewer.pk}/change/")
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k not in ("password", "groups", "user_permissions")}
    data.update({"groups": [g.pk for g in reviewer.groups.all()] + [lead_group.pk], "last_login_0": "", "last_login_1": "",
                 "date_joined_0": "2026-11-01", "date_joined_1": "10:00:00", "is_active": "on"})
    response = client.post(f"/admin/auth/user/{reviewer.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    event = AuditEvent.objects.get(action="user.groups_changed")
    assert event.data == {"old": ["reviewer"], "new": ["lead", "reviewer"]} and event.actor_name == "ada"


def test_a_restored_item_whose_preview_task_was_lost_gets_its_previews_from_the_sweep(
        api, reviewer, lead, reporter_settings, django_capture_on_commit_callbacks):
    from devtools.synthetic import synthetic_image
    from reports.tasks import derivatives_sweep

    item = make_confirmed(1, reviewer)
    preservation.material_destroy(actor=lead, item=item, reason="Retention test")
    with django_capture_on_commit_callbacks(execute=False):  # the broker lost the task
        assert push(api, synthetic_image(1, size=(320, 240)), metadata=make_metadata("again/1")).status_code == 201
    item.refresh_from_db()
    assert item.purged_at is None and item.previews == {}
    assert derivatives_sweep(older_than_seconds=60) == 1
    item.refresh_from_db()
    assert set(item.previews) == {"thumb", "inspect-1", "inspect-2", "inspect-3"}
    assert item.state == Item.State.DECIDED
    assert derivatives_sweep(older_than_seconds=60) == 0
