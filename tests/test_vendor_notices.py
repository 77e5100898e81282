"""Notices to dataset vendors: drafted only after the hold-off once a report on dataset material
finished, one per vendor, with dataset, version, record ids and hashes (never media, never
reviewers); sent only when a lead approves; the acknowledgement recorded; all audited."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from reports import tasks
from reports.feedback import notices
from reports.models import AuditEvent, Report, VendorNotice
from reports.reporting import drafting, lifecycle

from .factories import make_confirmed, make_metadata

pytestmark = pytest.mark.django_db


@pytest.fixture
def finished(reviewer, lead, cybertip, django_capture_on_commit_callbacks):
    """A finished report with two files from Acme Data's dataset and one from a web crawl."""
    first = make_confirmed(1, reviewer)
    second = make_confirmed(2, reviewer, metadata=make_metadata("fixture/2", provenance={
        **make_metadata()["provenance"],
        "dataset": {"name": "web-images-v3", "vendor": "Acme Data", "version": "2026-09", "record_id": "shard-0007/12"}}))
    crawl = make_metadata("fixture/3")
    crawl["provenance"] = {k: v for k, v in crawl["provenance"].items() if k != "dataset"} | {"source_type": "web_crawl"}
    make_confirmed(3, reviewer, metadata=crawl)
    reports = drafting.report_draft_build(actor=lead)
    for report in reports:
        with django_capture_on_commit_callbacks(execute=True):
            lifecycle.report_approve(actor=lead, report=report)
    assert Report.objects.filter(state="finished").count() == len(reports)
    return first, second


def age(days):
    Report.objects.update(finished_at=timezone.now() - timedelta(days=days))


def test_no_notice_is_drafted_before_the_hold_off(finished):
    age(13)
    assert tasks.vendor_notices_draft_task() == 0 and not VendorNotice.objects.exists()


def test_after_the_hold_off_one_draft_per_vendor_names_records_and_hashes_only(finished, reviewer):
    first, second = finished
    age(14)
    assert tasks.vendor_notices_draft_task() == 1
    assert tasks.vendor_notices_draft_task() == 0  # once per report and vendor
    notice = VendorNotice.objects.get()
    assert notice.vendor == "Acme Data" and notice.status == "draft"
    [dataset] = notice.datasets
    assert (dataset["dataset"], dataset["version"]) == ("web-images-v3", "2026-09")
    assert sorted((r["record_id"], r["sha256"], r["md5"]) for r in dataset["records"]) == sorted([
        ("shard-0042/1881", first.sha256, first.md5), ("shard-0007/12", second.sha256, second.md5)])
    for text in (notice.body, notice.subject):
        assert "rita" not in text and "lena" not in text and "example.org" not in text
    assert first.sha256 in notice.body and "shard-0007/12" in notice.body and "web-images-v3, version 2026-09" in notice.body
    assert mail.outbox == []  # a draft is not sent
    assert AuditEvent.objects.get(action="vendor_notice.drafted").data["records"] == 2


def test_the_source_types_are_a_setting(finished, settings):
    settings.TSREVIEW_VENDOR_NOTICE_SOURCE_TYPES = {"ai_training_data"}
    age(30)
    assert notices.vendor_notices_draft() == []


def test_a_lead_approves_and_sends_then_records_the_acknowledgement(finished, lena, rita):
    age(20)
    tasks.vendor_notices_draft_task()
    notice = VendorNotice.objects.get()
    assert "Acme Data" in lena.get("/lead/notices/").content.decode()
    assert rita.post(f"/lead/notices/{notice.pk}/send/", {"recipient": "abuse@acme.example"}).status_code == 404
    response = lena.post(f"/lead/notices/{notice.pk}/send/", {"recipient": "not an address"})
    assert response.status_code == 400 and "email address" in response.content.decode() and mail.outbox == []
    response = lena.post(f"/lead/notices/{notice.pk}/acknowledge/", {"acknowledgement": "early"})
    assert response.status_code == 400 and VendorNotice.objects.get().status == "draft"
    assert lena.post(f"/lead/notices/{notice.pk}/send/", {"recipient": "abuse@acme.example"}).status_code == 302
    [sent] = mail.outbox
    assert sent.to == ["abuse@acme.example"] and sent.body == notice.body and not sent.attachments
    notice.refresh_from_db()
    assert notice.status == "sent" and notice.approved_by.username == "lena" and notice.sent_at
    assert AuditEvent.objects.get(action="vendor_notice.sent").data["recipient"] == "abuse@acme.example"
    assert lena.post(f"/lead/notices/{notice.pk}/send/", {"recipient": "abuse@acme.example"}).status_code == 400
    assert len(mail.outbox) == 1
    assert lena.post(f"/lead/notices/{notice.pk}/acknowledge/", {"acknowledgement": " "}).status_code == 400
    response = lena.post(f"/lead/notices/{notice.pk}/acknowledge/", {"acknowledgement": "Removed from v2026-10, 30 Nov"})
    assert response.status_code == 302
    notice.refresh_from_db()
    assert notice.status == "acknowledged" and notice.acknowledgement == "Removed from v2026-10, 30 Nov"
    ack = AuditEvent.objects.get(action="vendor_notice.acknowledged")
    assert ack.actor_name == "lena"
    assert "Removed from v2026-10" in lena.get("/lead/notices/").content.decode()
