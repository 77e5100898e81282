"""The scanner outbox: what a scanner hears about its pushes (DESIGN §3), written as rows in the
same transaction as the state change they tell, so that a change is never told without having
happened and never happens without being told. feedback/webhooks.py delivers them; the API
serves them to a scanner that pulls.

An event names the submission, its external id, the item's SHA-256 (which the scanner sent),
the new status and, where it applies, the reason category or the NCMEC report id. Never media,
never who decided: nothing about a person is passed in here.
"""

import json
import uuid

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .jobs import enqueue
from .models import ListFeedback, Match, ReportFile, ScannerEvent, Submission

T = ScannerEvent.Type
STATUS = {T.QUEUED: "queued", T.CONFIRMED: "confirmed", T.NOT_CONFIRMED: "not_confirmed", T.REPORTED: "reported",
          T.RETRACTED: "retracted"}
# The only keys an event's data may carry besides the submission's own; a test reads this.
EXTRA_KEYS = {"reason", "report", "overturned"}


def event_body(*, event_id: str, type: str, at, data: dict) -> str:
    """The Standard Webhooks payload ({type, timestamp, data}) plus the id, canonically encoded:
    these exact characters are signed, sent and served."""
    return json.dumps({"id": event_id, "type": type, "timestamp": at.isoformat(), "data": data},
                      sort_keys=True, separators=(",", ":"))


def submission_events(*, submissions, type: str, **extra) -> list[ScannerEvent]:
    """One event per submission, to the scanner that pushed it. Callers are inside the
    transaction of the change; delivery is queued when it commits."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("events are written inside the transaction of the change they tell")
    unknown = set(extra) - EXTRA_KEYS
    if unknown:
        raise ValueError(f"not an event field: {sorted(unknown)}")
    now, rows = timezone.now(), []
    for submission in submissions:
        event_id = f"evt_{uuid.uuid4().hex}"
        data = {"submission": str(submission.pk), "external_id": submission.external_id,
                "item": submission.item.sha256, "status": STATUS[type], **extra}
        rows.append(ScannerEvent(event_id=event_id, scanner_id=submission.scanner_id, submission=submission, type=type,
                                 body=event_body(event_id=event_id, type=type, at=now, data=data), created_at=now,
                                 retry_since=now))
    ScannerEvent.objects.bulk_create(rows)
    pushed = {s.scanner_id for s in submissions if s.scanner.callback_url}  # the others only pull
    for scanner_id in sorted(pushed):
        transaction.on_commit(lambda s=scanner_id: enqueue("scanner_events_deliver_task", s))
    return rows


def item_events(*, item_id: int, type: str, submissions=None, **extra) -> list[ScannerEvent]:
    """An event to every submission (sighting) of an item, oldest first (`submissions`, when
    the caller has them already, read with their item and scanner in that order)."""
    if submissions is None:
        submissions = (Submission.objects.filter(item_id=item_id).select_related("item", "scanner")
                       .order_by("created_at", "pk"))
    return submission_events(submissions=submissions, type=type, **extra)


def report_events(report, /, *, type: str, **extra) -> list[ScannerEvent]:
    """An event to every submission of the items a report holds (the API's status of a
    sighting follows its item's report)."""
    items = ReportFile.objects.filter(report=report).values("item_id")
    submissions = (Submission.objects.filter(item_id__in=items).select_related("item", "scanner")
                   .order_by("created_at", "pk"))
    return submission_events(submissions=submissions, type=type, **extra)



# --- Feedback to NCMEC's hash sharing: the same outbox pattern ----------------------------------

# Our hash types -> NCMEC's fingerprint types (those it takes feedback on).
FINGERPRINTS = {"md5": "MD5", "sha1": "SHA1", "pdq": "PDQ", "photodna": "PDNA", "tmk_pdqf": "TMK_PDQF"}


def list_feedback_enabled() -> bool:
    return bool(settings.TSREVIEW_NCMEC_HASH_BASE_URL and settings.TSREVIEW_NCMEC_HASH_USERNAME
                and settings.TSREVIEW_NCMEC_HASH_PASSWORD)


def ncmec_entry(list_entry_id: str) -> tuple[str, str] | None:
    """(member ESP id, entry id) of a hash-sharing entry: "<esp>/<entry>", or a bare entry id of
    TSREVIEW_NCMEC_HASH_ESP_ID; None when neither."""
    esp, slash, entry = list_entry_id.partition("/")
    if slash:
        return (esp, entry) if esp.isdigit() and entry else None
    return (settings.TSREVIEW_NCMEC_HASH_ESP_ID, list_entry_id) if settings.TSREVIEW_NCMEC_HASH_ESP_ID and list_entry_id else None


def list_feedback_note(*, item_id: int, verdict: str, reason: str = "") -> int:
    """A standing verdict on an item with matches from NCMEC's hash-sharing lists becomes
    feedback on each entry (agree on confirmed, disagree with the reason on not apparent CSAM),
    written in the verdict's transaction and sent when it commits. At most once per entry,
    fingerprint and verdict (a unique constraint). Off unless credentials are configured."""
    if not list_feedback_enabled() or verdict not in ("confirmed", "not_csam"):
        return 0
    vote = ListFeedback.Vote.AGREE if verdict == "confirmed" else ListFeedback.Vote.DISAGREE
    now, rows = timezone.now(), []
    matches = (Match.objects.filter(submission__item_id=item_id, list_name__in=settings.TSREVIEW_NCMEC_HASH_LISTS)
               .values_list("list_name", "list_entry_id", "hash_type").distinct())
    for list_name, list_entry_id, hash_type in matches:
        entry, fingerprint = ncmec_entry(list_entry_id), FINGERPRINTS.get(hash_type)
        if entry and fingerprint:
            rows.append(ListFeedback(list_name=list_name, esp_id=entry[0], entry_id=entry[1], fingerprint=fingerprint,
                                     vote=vote, reason=reason if vote == ListFeedback.Vote.DISAGREE else "",
                                     item_id=item_id, created_at=now))
    if rows:
        ListFeedback.objects.bulk_create(rows, ignore_conflicts=True)
        transaction.on_commit(lambda: enqueue("list_feedback_resume"))
    return len(rows)
