"""Sending verdicts to NCMEC's hash sharing as feedback, exactly once per entry and verdict in our
records (the row, written with the verdict by events.list_feedback_note) and at most one vote at
NCMEC (a PUT replaces our vote; a crash between sending and recording sends it once more).

A row is leased while it is sent; a worker that dies leaves it `sending` until the lease runs
out, then the resume sweep sends it again. Audited: list_feedback.sent / list_feedback.failed.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from ..audit import audit_record
from ..models import ListFeedback
from .ncmec_hash import HashSharingClient, HashSharingError, Transient

LEASE = timedelta(minutes=5)


def client() -> HashSharingClient:
    return HashSharingClient(base_url=settings.TSREVIEW_NCMEC_HASH_BASE_URL, username=settings.TSREVIEW_NCMEC_HASH_USERNAME,
                             password=settings.TSREVIEW_NCMEC_HASH_PASSWORD, timeout=settings.TSREVIEW_NCMEC_HASH_TIMEOUT)


def _lease_take(feedback_id: int) -> bool:
    now = timezone.now()
    return bool(ListFeedback.objects.filter(pk=feedback_id).filter(
        Q(status=ListFeedback.Status.PENDING, lease_until__isnull=True) | Q(status=ListFeedback.Status.PENDING, lease_until__lt=now)
        | Q(status=ListFeedback.Status.SENDING, lease_until__lt=now)).update(
        status=ListFeedback.Status.SENDING, lease_until=now + LEASE, attempts=F("attempts") + 1))


def _reason_guid(api: HashSharingClient, feedback: ListFeedback) -> str:
    reasons = api.feedback_reasons(feedback.fingerprint)
    wanted = settings.TSREVIEW_NCMEC_FEEDBACK_REASONS.get(feedback.reason)
    by_name = {name: guid for guid, name in reasons.items()}
    if wanted and wanted in by_name:
        return by_name[wanted]
    if not wanted and len(reasons) == 1:
        return next(iter(reasons))
    raise HashSharingError(f"No NCMEC reason for '{feedback.reason}' (set TSREVIEW_NCMEC_FEEDBACK_REASONS); "
                           f"NCMEC offers: {', '.join(sorted(by_name))}.")


def feedback_send(*, feedback_id: int) -> str:
    """Send one feedback row if it is due; returns its status afterwards. Called by the task."""
    if not _lease_take(feedback_id):
        return ListFeedback.objects.get(pk=feedback_id).status
    feedback = ListFeedback.objects.get(pk=feedback_id)
    api = client()
    try:
        agree = feedback.vote == ListFeedback.Vote.AGREE
        guid = None if agree else _reason_guid(api, feedback)
        api.submit_feedback(esp_id=feedback.esp_id, entry_id=feedback.entry_id, fingerprint=feedback.fingerprint,
                            agree=agree, negative_reason_guid=guid)
    except Transient as exc:
        ListFeedback.objects.filter(pk=feedback_id).update(status=ListFeedback.Status.PENDING, lease_until=timezone.now()
                                                           + timedelta(minutes=1), last_error=str(exc)[:500])
        return ListFeedback.Status.PENDING
    except HashSharingError as exc:
        _record(feedback, ListFeedback.Status.FAILED, str(exc))
        return ListFeedback.Status.FAILED
    _record(feedback, ListFeedback.Status.SENT, "")
    return ListFeedback.Status.SENT


def _record(feedback: ListFeedback, status: str, error: str) -> None:
    with transaction.atomic():
        feedback = ListFeedback.objects.select_for_update(no_key=True).get(pk=feedback.pk)
        feedback.status, feedback.last_error, feedback.lease_until = status, error[:500], None
        if status == ListFeedback.Status.SENT:
            feedback.sent_at = timezone.now()
        feedback.save(update_fields=["status", "last_error", "lease_until", "sent_at"])
        audit_record(actor=None, action=f"list_feedback.{status}", subject=feedback, item_id=feedback.item_id,
                     data={"list": feedback.list_name, "esp_id": feedback.esp_id, "entry": feedback.entry_id,
                           "fingerprint": feedback.fingerprint, "vote": feedback.vote, "reason": feedback.reason,
                           "attempts": feedback.attempts, "error": error[:500]})


def feedback_to_resume(limit: int = 500) -> list[int]:
    """Rows never sent, waiting out a transient failure, or left `sending` by a dead worker."""
    now = timezone.now()
    return list(ListFeedback.objects.filter(
        Q(status=ListFeedback.Status.PENDING) & (Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        | Q(status=ListFeedback.Status.SENDING, lease_until__lt=now)).order_by("id").values_list("pk", flat=True)[:limit])


def feedback_recent(limit: int = 200):
    return ListFeedback.objects.order_by("-id")[:limit]
