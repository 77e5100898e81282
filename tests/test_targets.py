"""Time targets: the Team page's queues, items past their target, and one alert per breach."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from reports.intake.routing import item_urgent_set
from reports.leads.targets import past_target, queue_overview, targets_check
from reports.models import AuditEvent, Item, ReviewQueue, TargetBreach

from .factories import make_confirmed, make_item, make_user

pytestmark = pytest.mark.django_db


def aged(item, **delta):
    Item.objects.filter(pk=item.pk).update(created_at=timezone.now() - timedelta(**delta),
                                           queued_at=timezone.now() - timedelta(**delta))
    item.refresh_from_db()
    return item


def test_a_breach_is_recorded_audited_and_told_to_the_leads_once(lead, reviewer, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    make_user("lars", "lead")  # a second lead; both are told, in one message
    fresh = make_item(1)
    late = aged(make_item(2), hours=25)  # normal tier: first review within 24 h
    urgent = aged(make_item(3), minutes=61)  # urgent: within 60 min
    item_urgent_set(item_id=urgent.pk, urgent=True, actor=lead)
    new = targets_check()
    assert sorted(b.item_id for b in new) == sorted([late.pk, urgent.pk])
    assert {(b.item_id, b.tier, b.kind) for b in new} == {(late.pk, "normal", "first_review"), (urgent.pk, "urgent", "first_review")}
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert sorted(message.to) == ["lars@example.org", "lena@example.org"]
    assert f"item {late.pk}: time to first review past the normal target of 24 h" in message.body
    assert f"item {urgent.pk}: time to first review past the urgent target of 60 min" in message.body
    assert f"item {fresh.pk}" not in message.body
    assert AuditEvent.objects.filter(action="target.breached").count() == 2
    assert AuditEvent.objects.get(action="target.notified").data["recipients"] == 2
    # Told once: the next runs record and send nothing more.
    assert targets_check() == [] and targets_check() == []
    assert len(mail.outbox) == 1 and TargetBreach.objects.count() == 2
    assert AuditEvent.objects.filter(action="target.breached").count() == 2


def test_a_confirmed_item_without_a_finished_report_breaches_its_report_target(reviewer, lead, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    item = make_confirmed(1, reviewer)
    assert [p for p in past_target() if p["item"].pk == item.pk] == []
    Item.objects.filter(pk=item.pk).update(decided_at=timezone.now() - timedelta(days=8))
    found = [p for p in past_target() if p["item"].pk == item.pk]
    assert [(p["kind"], p["tier"]) for p in found] == [("report", "high")]
    assert targets_check()[0].kind == "report"
    assert "confirmation to a finished report past the high target of 48 h" in mail.outbox[0].body


def test_an_email_that_fails_is_sent_again_by_the_next_run(lead, settings, monkeypatch):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    aged(make_item(2), hours=25)
    import reports.leads.targets as targets

    def broken(**kwargs):
        raise OSError("mail server down")

    monkeypatch.setattr(targets, "send_mail", broken)
    with pytest.raises(OSError):
        targets_check()
    assert TargetBreach.objects.get().notified_at is None
    monkeypatch.undo()
    targets_check()
    assert len(mail.outbox) == 1 and TargetBreach.objects.get().notified_at is not None


def test_the_team_page_shows_each_queue_and_what_is_past_its_target(lena, reviewer, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    live = ReviewQueue.objects.create(name="live uploads", source_types=["user_upload"])
    waiting = aged(make_item(1), hours=30)
    make_item(2)
    make_confirmed(3, reviewer)  # decided 0 s after intake, in the general queue
    rows = {r["queue"]: r for r in queue_overview()}
    assert set(rows) == {"live uploads", "general"}
    assert rows["live uploads"]["waiting"] == 0 and rows["live uploads"]["oldest_seconds"] is None
    assert rows["general"]["waiting"] == 2 and rows["general"]["oldest_seconds"] >= 30 * 3600
    assert rows["general"]["decided"] == 1 and rows["general"]["decision_p50"] < 60
    page = lena.get("/lead/stats/").content.decode()
    assert 'data-queue="live uploads"' in page and 'data-queue="general"' in page
    assert re.search(r"<td>general</td><td>2</td>\s*<td>30 h</td>", page)
    assert f'<a href="/lead/items/{waiting.pk}/">item {waiting.pk}</a> · normal · waiting for a first review for 30 h' in page
    assert live.pk  # the queue row is there even with nothing in it
