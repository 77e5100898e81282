"""Races read in the code (issue 13, finding 8), each made to happen at its worst moment by a
hook in the style of tests/test_faults.py: a retention purge between a push's check and its
lock, a purge during a key rotation's re-encryption, and a send step that outlasts its lease."""

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from devtools.synthetic import synthetic_image
from reports.cybertip.client import Client
from reports.intake import submission as intake
from reports.intake.storage import media_store
from reports.models import ApiCall, AuditEvent, Item, Report, Scanner
from reports.reporting import lifecycle
from reports.reporting.preservation import retention_purge

from .factories import TEST_MEDIA_KEY, decide_next, make_item, make_metadata
from .test_key_rotation import NEW_KEY


def in_another_connection(work, results: list) -> threading.Thread:
    """`work` in a thread of its own (its own database connection), as another process would."""
    def run():
        try:
            results.append(work())
        finally:
            connections.close_all()
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def decided_long_ago(reviewer, settings, seed: int) -> Item:
    """An item decided "not CSAM" before the retention period: the next purge takes its media."""
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    item = make_item(seed)
    decide_next(reviewer, "not_csam", reason="adult")
    Item.objects.filter(pk=item.pk).update(
        decided_at=timezone.now() - timedelta(days=settings.TSREVIEW_RETENTION_DAYS + 1))
    return Item.objects.get(pk=item.pk)


@pytest.mark.django_db(transaction=True)
def test_a_purge_between_a_pushs_check_and_its_lock_does_not_lose_the_new_sightings_bytes(
        reviewer, settings, monkeypatch, media_root):
    item = decided_long_ago(reviewer, settings, 7)
    data = synthetic_image(7, size=(320, 240))  # the same bytes again, from a new sighting
    real = intake._item_get_or_create
    purged: list[int] = []

    def purge_first(facts, blob):  # after "are these bytes stored?" said yes, before the item's lock
        if not purged:
            in_another_connection(retention_purge, purged).join()
        return real(facts, blob)

    monkeypatch.setattr(intake, "_item_get_or_create", purge_first)
    result = intake.submission_push(scanner=Scanner.objects.get(name="fixture-scanner"),
                                    document=make_metadata("seen-again"), data=data, claimed_type="image/jpeg")

    assert purged == [1]  # the purge ran, and took the old media
    item.refresh_from_db()
    assert result.submission.item_id == item.pk
    assert item.purged_at is None and media_store().get(item.original_blob) == data
    assert AuditEvent.objects.filter(action="material.purged", item_id=item.pk).count() == 1
    assert AuditEvent.objects.filter(action="item.restored", item_id=item.pk).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_key_rotation_does_not_bring_back_a_file_purged_while_it_was_re_encrypted(
        reviewer, settings, monkeypatch, media_root):
    item = decided_long_ago(reviewer, settings, 8)
    settings.TSREVIEW_MEDIA_KEY, settings.TSREVIEW_MEDIA_OLD_KEYS = NEW_KEY, TEST_MEDIA_KEY
    store = media_store()
    original = media_root / item.original_blob
    real_write = store.files.write
    purged: list[int] = []
    threads = []

    def purge_while_rewriting(name: str, sealed: bytes):  # re-encrypted, about to be written back
        if name == item.original_blob and not threads:
            threads.append(in_another_connection(retention_purge, purged))
            threads[0].join(timeout=2)  # the purge deletes now, or waits for the rewrite to finish
        real_write(name, sealed)

    monkeypatch.setattr(store.files, "write", purge_while_rewriting)
    store.rekey(item.original_blob)
    threads[0].join()

    assert purged == [1]
    item.refresh_from_db()
    assert item.purged_at is not None
    assert not original.exists()  # purged stays purged
    assert not any(p.name.endswith(".tmp") for p in media_root.rglob("*"))


# --- A send step that outlasts the 10-minute lease ------------------------------------------------

def submits(report) -> int:
    return ApiCall.objects.filter(report=report, step="submit").count()


def lease_runs_out_and_the_sweep_sends(report) -> str:
    """Ten minutes pass: the lease runs out and the sweep hands the report to another run."""
    Report.objects.filter(pk=report.pk).update(send_lease_until=timezone.now() - timedelta(seconds=1))
    return lifecycle.report_send(report_id=report.pk)


@pytest.mark.django_db
def test_a_status_step_that_outlasts_the_lease_does_not_lead_to_a_second_submit(approved, cybertip, monkeypatch):
    real_status, second_run, calls = Client.status, [], []

    def slow_status(self, *, report):
        calls.append(1)
        answer = real_status(self, report=report)
        if len(calls) == 1:  # the first run's /status, still waiting when the lease runs out
            second_run.append(lease_runs_out_and_the_sweep_sends(report))
        return answer

    monkeypatch.setattr(Client, "status", slow_status)
    assert lifecycle.report_send(report_id=approved.pk) == Report.State.FINISHED

    assert second_run == [Report.State.FINISHED]  # the run that took over finished it…
    assert submits(approved) == 1 and len(cybertip.reports) == 1  # …and the first run sent nothing more
    assert len(cybertip.finished_reports()) == 1
    assert AuditEvent.objects.filter(action="report.opened").count() == 1


@pytest.mark.django_db
def test_a_submit_that_outlasts_the_lease_is_not_sent_again_and_the_lead_is_told(approved, lead, cybertip, monkeypatch):
    real_submit, second_run, calls = Client.submit, [], []

    def slow_submit(self, *, report, document):
        calls.append(1)
        if len(calls) == 1:  # this /submit is on its way when the lease runs out
            second_run.append(lease_runs_out_and_the_sweep_sends(report))
        return real_submit(self, report=report, document=document)

    monkeypatch.setattr(Client, "submit", slow_submit)
    assert lifecycle.report_send(report_id=approved.pk) == Report.State.STALLED

    assert second_run == [Report.State.STALLED]  # the other run did not submit: it stalled for a lead
    approved.refresh_from_db()
    assert submits(approved) == 1 and len(cybertip.reports) == 1
    assert approved.ncmec_report_id == next(iter(cybertip.reports))  # the first run's answer is kept
    assert "no second /submit was sent" in approved.failure

    lifecycle.report_retry(actor=lead, report=approved)  # the lead checked with NCMEC
    assert lifecycle.report_send(report_id=approved.pk) == Report.State.FINISHED
    assert submits(approved) == 1 and len(cybertip.finished_reports()) == 1
