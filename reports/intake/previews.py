"""Previews: the blurred greyscale derivatives made in a worker; the item then waits for review."""

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..audit import audit_record
from ..events import item_events
from ..jobs import enqueue
from ..models import Item, ScannerEvent
from ..states import item_move
from .decode import DecodeFailed, video_previews_limited
from .media import previews_make
from .quarantine import item_demote_if_quarantined
from .storage import media_store


def previews_enqueue(item_id: int) -> None:
    """Queue the preview task. If the broker is down the item stays `new` and the sweep
    (tasks.derivatives_sweep) queues it again, so nothing is lost."""
    enqueue("item_previews_task", item_id)


def item_previews_make(*, item_id: int) -> Item:
    """Make the blurred previews of an item (for a video: its contact sheet and sampled
    frames) and put it in the review queue.

    Safe to run twice: a second run finds the previews and changes nothing. An item restored
    after a purge gets its previews back and keeps its state. Audited: item.previews_made and
    item.queued."""
    item = Item.objects.get(pk=item_id)
    if item.previews or item.purged_at:
        return item
    store = media_store()
    frame_times, frame_pdqs = [], []
    if item.is_video:
        try:
            previews, frame_times, frame_pdqs = video_previews_limited(item.original_blob)
        except DecodeFailed as exc:
            return _unreviewable(item_id, str(exc))
    else:
        previews = previews_make(store.get(item.original_blob))
    names = {kind: store.put(blob, kind="previews") for kind, blob in previews.items()}
    with transaction.atomic():
        item = Item.objects.select_for_update(no_key=True).get(pk=item_id)
        if item.previews or item.purged_at:
            for name in names.values():
                store.delete(name)
            return item
        item.previews, item.frame_times, item.frame_pdqs = names, frame_times, frame_pdqs
        fields = ["previews", "frame_times", "frame_pdqs"]
        if item.state == Item.State.NEW:
            item.state, item.queued_at = item_move(item.state, Item.State.QUEUED), timezone.now()
            fields += ["state", "queued_at"]
        item.save(update_fields=fields)
        demoted = "state" in fields and item_demote_if_quarantined(item)
        audit_record(actor=None, action="item.previews_made", subject=item, item_id=item.pk,
                     data={"previews": sorted(names)})
        if "state" in fields:
            audit_record(actor=None, action="item.queued", subject=item, item_id=item.pk,
                         data={"from": "new", "to": "queued", **({"quarantined_entry": True} if demoted else {})})
            item_events(item_id=item.pk, type=ScannerEvent.Type.QUEUED)
    return item


def _unreviewable(item_id: int, reason: str) -> Item:
    """No derivatives could be made within the limits: the item waits for a lead, with why.
    Audited: item.unreviewable."""
    with transaction.atomic():
        item = Item.objects.select_for_update(no_key=True).get(pk=item_id)
        if item.state != Item.State.NEW:
            return item
        item.state, item.queued_at = item_move(item.state, Item.State.ESCALATED), timezone.now()
        item.unreviewable_reason = reason[:400]
        item.save(update_fields=["state", "queued_at", "unreviewable_reason"])
        audit_record(actor=None, action="item.unreviewable", subject=item, item_id=item.pk, data={"reason": item.unreviewable_reason})
    return item


def items_without_previews(*, older_than_seconds: int = 60, limit: int = 1000) -> list[int]:
    """Items left `new` for a while (broker down at intake, a lost task), and items restored
    after a purge whose previews are not back: the sweep queues them again."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(Item.objects.filter(state=Item.State.NEW, created_at__lt=cutoff).values_list("pk", flat=True)[:limit])
    restored = Item.objects.filter(Q(previews={}, purged_at__isnull=True, unreviewable_reason="") & ~Q(state=Item.State.NEW))
    return ids + list(restored.values_list("pk", flat=True)[:limit])
