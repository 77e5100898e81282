"""Preservation and retention: a one-year hold on finish; the purge never touches held or
needed material; leads extend holds and destroy material on a law-enforcement request."""

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.test import override_settings
from django.utils import timezone

from reports import tasks
from reports.models import AuditEvent, Decision, Hold, Item, Report
from reports.reporting import drafting, lifecycle, preservation
from reports.review import decisions, queue

from .factories import make_confirmed, make_item

pytestmark = pytest.mark.django_db


def media_exists(item: Item, media_root) -> bool:
    names = [item.original_blob, *item.previews.values()]
    return all((media_root / name).exists() for name in names)


def media_gone(item: Item, media_root) -> bool:
    return not any((media_root / name).exists() for name in [item.original_blob, *item.previews.values()])


def finished_report(seed, reviewer, lead, capture) -> Report:
    make_confirmed(seed, reviewer, metadata=None)
    report = drafting.report_draft_build(actor=lead)[0]
    with capture(execute=True):
        lifecycle.report_approve(actor=lead, report=report)
    report.refresh_from_db()
    assert report.state == Report.State.FINISHED
    return report


def not_csam(seed, reviewer) -> Item:
    item = make_item(seed, priority=2000 + seed)
    with override_settings(TSREVIEW_QA_SAMPLE_PERCENT=0):
        decisions.decision_record(user=reviewer, claim=queue.item_claim(user=reviewer), verdict="not_csam", reason="adult")
    item.refresh_from_db()
    return item


def days_later(days: int):
    return timezone.now() + timedelta(days=days)


def test_finishing_a_report_holds_each_item_for_a_year(reviewer, lead, cybertip, django_capture_on_commit_callbacks):
    report = finished_report(1, reviewer, lead, django_capture_on_commit_callbacks)
    hold = Hold.objects.get()
    assert hold.report == report and hold.item_id == report.files.get().item_id
    assert hold.until.date() == (report.finished_at + timedelta(days=365)).date()
    assert str(report.ncmec_report_id) in hold.reason
    assert AuditEvent.objects.filter(action="hold.placed", item_id=hold.item_id, actor_kind="system").exists()


def test_retention_purges_decided_media_that_nobody_needs(reviewer, media_root):
    item = not_csam(1, reviewer)
    assert media_exists(item, media_root)
    assert preservation.retention_purge(now=days_later(django_settings.TSREVIEW_RETENTION_DAYS + 1)) == 1
    item.refresh_from_db()
    assert item.purged_at and media_gone(item, media_root)
    assert Decision.objects.filter(item=item).count() == 1 and item.submissions.count() == 1  # the record stays
    event = AuditEvent.objects.get(action="material.purged")
    assert event.item_id == item.pk and event.actor_kind == "system"


def test_recent_decisions_are_kept(reviewer, media_root):
    item = not_csam(1, reviewer)
    assert preservation.retention_purge(now=days_later(1)) == 0
    assert media_exists(item, media_root)


def test_retention_never_touches_held_material(reviewer, lead, cybertip, media_root, django_capture_on_commit_callbacks):
    report = finished_report(1, reviewer, lead, django_capture_on_commit_callbacks)
    item = report.files.get().item
    assert preservation.retention_purge(now=days_later(364)) == 0
    assert media_exists(item, media_root) and not AuditEvent.objects.filter(action="material.purged").exists()
    assert preservation.retention_purge(now=days_later(366)) == 1  # the hold has ended
    assert media_gone(item, media_root)


def test_retention_keeps_confirmed_items_until_they_are_reported(reviewer, lead, reporter_settings, media_root):
    unreported = make_confirmed(1, reviewer)
    later = days_later(django_settings.TSREVIEW_RETENTION_DAYS + 30)
    assert preservation.retention_purge(now=later) == 0
    drafting.report_draft_build(actor=lead)  # now in a draft: still needed
    assert preservation.retention_purge(now=later) == 0
    assert media_exists(unreported, media_root)


def test_retention_runs_from_the_beat(reviewer):
    assert django_settings.CELERY_BEAT_SCHEDULE["retention-purge"]["task"] == "reports.tasks.retention_purge_task"
    not_csam(1, reviewer)
    assert tasks.retention_purge_task() == 0  # nothing is old enough yet


def test_a_lead_extends_a_hold_with_a_reason(lena, reviewer, lead, cybertip, django_capture_on_commit_callbacks):
    report = finished_report(1, reviewer, lead, django_capture_on_commit_callbacks)
    hold = Hold.objects.get()
    old_until = hold.until
    response = lena.post(f"/reports/holds/{hold.pk}/extend/", {"until": "2030-06-30", "reason": "Police preservation request 2026-118"})
    assert response.status_code == 302 and response.url == f"/reports/{report.pk}/"
    hold.refresh_from_db()
    assert hold.until.date().isoformat() == "2030-06-30" and "2026-118" in hold.reason
    event = AuditEvent.objects.get(action="hold.extended")
    assert event.actor_name == "lena" and event.data["reason"] == "Police preservation request 2026-118"
    assert event.data["old"].startswith(old_until.date().isoformat())
    assert preservation.retention_purge(now=days_later(400)) == 0


@pytest.mark.parametrize("body,message", [
    ({"until": "2030-06-30", "reason": ""}, "This field is required"),
    ({"until": "2020-01-01", "reason": "earlier"}, "Choose a date after the current end"),
])
def test_a_hold_is_not_shortened_or_extended_without_a_reason(lena, reviewer, lead, cybertip, django_capture_on_commit_callbacks,
                                                             body, message):
    finished_report(1, reviewer, lead, django_capture_on_commit_callbacks)
    hold = Hold.objects.get()
    response = lena.post(f"/reports/holds/{hold.pk}/extend/", body, follow=True)
    assert message in response.content.decode()
    assert Hold.objects.get().until == hold.until and not AuditEvent.objects.filter(action="hold.extended").exists()


def test_a_lead_destroys_held_material_on_a_law_enforcement_request(lena, reviewer, lead, cybertip, media_root,
                                                                    django_capture_on_commit_callbacks):
    report = finished_report(1, reviewer, lead, django_capture_on_commit_callbacks)
    item = report.files.get().item
    response = lena.post(f"/reports/items/{item.pk}/destroy/", {"reason": "FBI request 26-4411: destroy all copies",
                                                                "report": str(report.pk)})
    assert response.status_code == 302 and response.url == f"/reports/{report.pk}/"
    item.refresh_from_db()
    assert item.purged_at and media_gone(item, media_root)
    hold = Hold.objects.get()
    assert hold.released_at and "FBI request 26-4411" in hold.release_reason
    event = AuditEvent.objects.get(action="material.destroyed")
    assert event.actor_name == "lena" and event.data == {"reason": "FBI request 26-4411: destroy all copies",
                                                         "holds_released": [hold.pk]}
    assert Item.objects.filter(pk=item.pk).exists() and Decision.objects.filter(item=item).exists()
    assert "destroyed" in lena.get(f"/reports/{report.pk}/").content.decode()


def test_material_is_not_destroyed_without_a_reason(lena, reviewer, media_root):
    item = not_csam(1, reviewer)
    response = lena.post(f"/reports/items/{item.pk}/destroy/", {"reason": " "}, follow=True)
    assert response.status_code == 200
    item.refresh_from_db()
    assert item.purged_at is None and media_exists(item, media_root)
    assert not AuditEvent.objects.filter(action="material.destroyed").exists()


def test_material_of_a_report_being_sent_is_not_destroyed(lena, reviewer, lead, cybertip, media_root,
                                                           django_capture_on_commit_callbacks):
    make_confirmed(1, reviewer)
    report = drafting.report_draft_build(actor=lead)[0]
    with django_capture_on_commit_callbacks(execute=False):
        lifecycle.report_approve(actor=lead, report=report)
    item = report.files.get().item
    response = lena.post(f"/reports/items/{item.pk}/destroy/", {"reason": "request"}, follow=True)
    assert "being sent" in response.content.decode()
    assert media_exists(item, media_root)


@pytest.mark.parametrize("url", ["/reports/holds/{hold}/extend/", "/reports/items/{item}/destroy/"])
def test_a_reviewer_can_neither_extend_holds_nor_destroy_material(client, reviewer, lead, cybertip, media_root, url,
                                                                 django_capture_on_commit_callbacks):
    report = finished_report(1, reviewer, lead, django_capture_on_commit_callbacks)
    hold = Hold.objects.get()
    client.force_login(reviewer)
    response = client.post(url.format(hold=hold.pk, item=hold.item_id), {"until": "2030-01-01", "reason": "x"})
    assert response.status_code == 404
    assert Hold.objects.get().until == hold.until and media_exists(report.files.get().item, media_root)


def test_destroyed_media_answers_404_and_the_records_stay(client, lead, reviewer):
    item = make_confirmed(60, reviewer)
    preservation.material_destroy(actor=lead, item=item, reason="Police request 2026/118")
    client.force_login(lead)
    assert client.get(f"/media/{item.pk}/preview/thumb/").status_code == 404
    assert client.post(f"/media/{item.pk}/original/", {"mode": "hold"}).status_code == 404
    assert "Media destroyed on" in client.get(f"/lead/items/{item.pk}/").content.decode()
    assert "media was destroyed" in client.get(f"/review/{item.pk}/").content.decode()
    assert Item.objects.get(pk=item.pk).decisions.count() == 1
