"""Celery entry points: load by id, call one operation of one stage."""

import logging

from celery import shared_task
from celery.signals import task_failure
from django.conf import settings
from django.db import transaction

from . import audit
from .audit import audit_record
from .feedback import list_feedback, notices, webhooks
from .intake import previews, quarantine, routing
from .jobs import enqueue
from .leads import targets
from .reporting import drafting, lifecycle, preservation

log = logging.getLogger(__name__)


@task_failure.connect
def task_failed(sender=None, exception=None, **kwargs):
    """A task that raised is on record (counted by /metrics as tsreview_celery_task_failures)."""
    try:
        with transaction.atomic():
            audit_record(actor=None, action="task.failed",
                         data={"task": getattr(sender, "name", str(sender)), "error": type(exception).__name__})
    except Exception:  # noqa: BLE001 - the database may be what failed; the worker's log still says it
        log.exception("could not record the failure of %s", sender)


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def item_previews_task(item_id: int) -> None:
    previews.item_previews_make(item_id=item_id)
    log.info("previews made for item %s", item_id)


@shared_task
def derivatives_sweep(older_than_seconds: int = 60) -> int:
    """Queue previews again for items left `new` (broker down at intake, a lost task), and for
    items restored after a purge whose previews are not back (making them twice is harmless)."""
    ids = previews.items_without_previews(older_than_seconds=older_than_seconds)
    for item_id in ids:
        previews.previews_enqueue(item_id)
    return len(ids)


@shared_task
def priorities_recompute_task() -> int:
    """Score and route the waiting items again after an admin changed the policy or the queues."""
    return routing.priorities_recompute()


@shared_task
def targets_check_task() -> int:
    """Record items past their time target and tell the leads once."""
    return len(targets.targets_check())


# --- CyberTipline reports, preservation and retention ------------------------------------------

@shared_task(bind=True, acks_late=True, max_retries=None)
def report_send_task(self, report_id: int) -> str:
    """Send an approved report, resuming where an earlier run stopped. Transient failures are
    retried with exponential backoff; when the retries run out the report stalls for a lead."""
    try:
        return lifecycle.report_send(report_id=report_id)
    except lifecycle.submit.Transient as exc:
        if self.request.retries >= settings.TSREVIEW_CYBERTIP_MAX_RETRIES:
            lifecycle.report_stall(report_id=report_id, reason=str(exc))
            return "stalled"
        raise self.retry(exc=exc, countdown=min(3600, 30 * 2 ** self.request.retries)) from None


@shared_task
def reports_resume() -> int:
    """Resume sending that a dead worker left or whose task never reached the broker."""
    ids = lifecycle.reports_to_resume()
    for report_id in ids:
        lifecycle.report_send_enqueue(report_id)
    return len(ids)


@shared_task
def report_drafts_build_task() -> int:
    return len(drafting.report_draft_build(actor=None))


@shared_task
def retention_purge_task() -> int:
    return preservation.retention_purge()


# --- The audit chain ---------------------------------------------------------------------------

@shared_task(ignore_result=True)
def audit_chain_task() -> int:
    """Link the audit events committed since the last run (and checkpoint the head when due).
    Refuses, loudly, to extend a log that no longer reaches its newest checkpoint."""
    return audit.audit_chain()


# --- Events to scanners (signed webhooks) ---------------------------------------------------------

@shared_task(acks_late=True)
def scanner_events_deliver_task(scanner_id: int) -> dict:
    return webhooks.events_deliver(scanner_id=scanner_id)


@shared_task
def scanner_events_sweep() -> int:
    """Queue delivery for scanners with events due: retries whose backoff ran out, and events
    whose task never reached the broker."""
    ids = webhooks.scanners_with_due_events()
    for scanner_id in ids:
        enqueue("scanner_events_deliver_task", scanner_id)
    return len(ids)


@shared_task(acks_late=True)
def entry_quarantine_apply_task(quarantine_id: int) -> int:
    return quarantine.quarantine_apply(quarantine_id=quarantine_id)


# --- Feedback to NCMEC's hash sharing ------------------------------------------------------------

@shared_task(acks_late=True)
def list_feedback_resume() -> int:
    """Send every feedback row that is due (new, after a transient failure, or left by a dead worker)."""
    ids = list_feedback.feedback_to_resume()
    for feedback_id in ids:
        list_feedback.feedback_send(feedback_id=feedback_id)
    return len(ids)


@shared_task
def vendor_notices_draft_task() -> int:
    return len(notices.vendor_notices_draft())
