"""Celery entry points: load by id, call one operation."""

from datetime import timedelta

from celery import shared_task
from django.db.models import Q
from django.utils import timezone

from . import intake
from .models import Item


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def item_previews_task(item_id: int) -> None:
    intake.item_previews_make(item_id=item_id)


@shared_task
def derivatives_sweep(older_than_seconds: int = 60) -> int:
    """Queue previews again for items left `new` (broker down at intake, a lost task), and for
    items restored after a purge whose previews are not back (making them twice is harmless)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(Item.objects.filter(state=Item.State.NEW, created_at__lt=cutoff).values_list("pk", flat=True)[:1000])
    restored = Item.objects.filter(Q(previews={}, purged_at__isnull=True) & ~Q(state=Item.State.NEW))
    ids += list(restored.values_list("pk", flat=True)[:1000])
    for item_id in ids:
        intake.previews_enqueue(item_id)
    return len(ids)


# --- CyberTipline reports, preservation and retention ------------------------------------------

@shared_task(bind=True, acks_late=True, max_retries=None)
def report_send_task(self, report_id: int) -> str:
    """Send an approved report, resuming where an earlier run stopped. Transient failures are
    retried with exponential backoff; when the retries run out the report stalls for a lead."""
    from django.conf import settings

    from .cybertip import submit

    try:
        return submit.report_send(report_id=report_id)
    except submit.Transient as exc:
        if self.request.retries >= settings.TSREVIEW_CYBERTIP_MAX_RETRIES:
            submit.report_stall(report_id=report_id, reason=str(exc))
            return "stalled"
        raise self.retry(exc=exc, countdown=min(3600, 30 * 2 ** self.request.retries)) from None


@shared_task
def reports_resume() -> int:
    """Resume sending that a dead worker left (its lease ran out) or whose task never reached
    the broker (approved minutes ago, never attempted)."""
    from .models import Report
    from .reporting import report_send_enqueue

    now = timezone.now()
    ids = list(Report.objects.filter(state=Report.State.APPROVED).filter(
        Q(send_lease_until__lt=now) | Q(attempts=0, approved_at__lt=now - timedelta(minutes=5))).values_list("pk", flat=True))
    for report_id in ids:
        report_send_enqueue(report_id)
    return len(ids)


@shared_task
def report_drafts_build_task() -> int:
    from .reporting import report_draft_build

    return len(report_draft_build(actor=None))


@shared_task
def retention_purge_task() -> int:
    from .reporting import retention_purge

    return retention_purge()
