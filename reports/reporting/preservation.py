"""Preservation and retention: reported material is held for the legal period; what nobody
needs is purged; a lead may extend a hold or destroy material on a law-enforcement request."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..audit import audit_record
from ..errors import Refused
from ..intake.storage import media_store
from ..models import Hold, Item, Report, ReportFile
from ..states import REPORT_IN_FLIGHT
from .selectors import unreported_sightings


def sending_guard(item: Item) -> None:
    """The one "being sent" rule: while a report with this item is on its way to NCMEC, its
    media and its verdict stay as they are. Refused otherwise."""
    if ReportFile.objects.filter(item=item, report__state__in=REPORT_IN_FLIGHT).exists():
        raise Refused({"item": "A report with this item is being sent; wait until it is finished or failed."})


def holds_place(*, report: Report) -> list[Hold]:
    """On finish: hold each reported item (its media; its submissions, decisions and views are
    never purged) for the legal period. Called inside report_finished's transaction.
    Audited: hold.placed per item."""
    until = timezone.now() + timedelta(days=settings.TSREVIEW_HOLD_DAYS)
    holds = []
    for item_id in sorted(set(report.files.values_list("item_id", flat=True))):
        hold = Hold.objects.create(item_id=item_id, report=report, until=until,
                                   reason=f"Reported to NCMEC as CyberTipline report {report.ncmec_report_id}")
        audit_record(actor=None, action="hold.placed", subject=hold, item_id=item_id,
                     data={"report": report.pk, "until": until})
        holds.append(hold)
    return holds


def hold_extend(*, actor, hold: Hold, until: datetime, reason: str) -> Hold:
    """A lead extends a hold (e.g. a law-enforcement preservation request). Audited:
    hold.extended with the old and new dates and the reason."""
    reason = reason.strip()
    with transaction.atomic():
        hold = Hold.objects.select_for_update(no_key=True).get(pk=hold.pk)
        errors = {}
        if not reason:
            errors["reason"] = "Say why the hold is extended."
        if hold.released_at:
            errors["until"] = "This hold was released."
        elif until <= hold.until:
            errors["until"] = f"Choose a date after the current end, {hold.until:%Y-%m-%d}."
        if errors:
            raise Refused(errors)
        old = hold.until
        hold.until = until
        hold.reason = f"{hold.reason}\nExtended to {until:%Y-%m-%d} by {actor.get_username()}: {reason}"
        hold.save(update_fields=["until", "reason"])
        audit_record(actor=actor, action="hold.extended", subject=hold, item_id=hold.item_id,
                     data={"old": old, "new": until, "reason": reason})
    return hold


def material_destroy(*, actor, item: Item, reason: str) -> Item:
    """Destroy an item's media on a law-enforcement request, held or not. The item, its
    decisions and the audit log stay. Refused while a report with it is being sent.
    Audited: material.destroyed (and the holds it released)."""
    reason = reason.strip()
    if not reason:
        raise Refused({"reason": "Give the law-enforcement request (agency, reference) as the reason."})
    with transaction.atomic():
        item = Item.objects.select_for_update(no_key=True).get(pk=item.pk)
        if item.purged_at:
            raise Refused({"item": "This item's media is already gone."})
        sending_guard(item)
        now = timezone.now()
        released = list(item.holds.filter(released_at__isnull=True).values_list("pk", flat=True))
        item.holds.filter(pk__in=released).update(released_at=now, release_reason=f"Material destroyed: {reason}")
        _media_delete(item, now)
        audit_record(actor=actor, action="material.destroyed", subject=item, item_id=item.pk,
                     data={"reason": reason, "holds_released": released})
    return item


def _media_delete(item: Item, now) -> None:
    """Called last in its transaction: if the commit fails after the files went, the next
    retention run finds the item unmarked and marks it (deleting a missing file is a no-op)."""
    item.purged_at = now
    item.save(update_fields=["purged_at"])
    store = media_store()
    for name in dict.fromkeys([item.original_blob, *item.previews.values()]):  # a set's kinds share one file
        store.delete(name)


def purge_candidates(now: datetime):
    """Decided items whose media nobody needs: decided before the retention period, under no
    active hold, and not a confirmed item still waiting to be reported or being sent."""
    cutoff = now - timedelta(days=settings.TSREVIEW_RETENTION_DAYS)
    held = Hold.objects.filter(released_at__isnull=True, until__gt=now).values("item_id")
    unfinished = ReportFile.objects.exclude(report__state=Report.State.FINISHED).values("item_id")
    return (Item.objects.filter(state=Item.State.DECIDED, decided_at__lt=cutoff, purged_at__isnull=True)
            .exclude(pk__in=held).exclude(pk__in=unfinished)
            .exclude(Q(verdict=Item.Verdict.CONFIRMED) & Q(pk__in=unreported_sightings().values("item_id"))))


def retention_purge(*, now: datetime | None = None, limit: int = 500) -> int:
    """Purge the media of items that are neither held nor needed (beat, daily). Each item is
    re-checked under its row lock, so a hold placed meanwhile wins. Audited: material.purged."""
    now = now or timezone.now()
    purged = 0
    for item_id in list(purge_candidates(now).values_list("pk", flat=True)[:limit]):
        with transaction.atomic():
            item = Item.objects.select_for_update(no_key=True, skip_locked=True).filter(pk=item_id).first()
            if item is None or not purge_candidates(now).filter(pk=item_id).exists():
                continue
            _media_delete(item, now)
            audit_record(actor=None, action="material.purged", subject=item, item_id=item.pk,
                         data={"retention_days": settings.TSREVIEW_RETENTION_DAYS, "verdict": item.verdict})
            purged += 1
    return purged
