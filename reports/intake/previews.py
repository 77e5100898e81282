"""Previews: the blurred greyscale derivatives made in a worker; the item then waits for review."""

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..audit import audit_record, audit_record_many
from ..events import item_events
from ..jobs import enqueue
from ..models import Item, ScannerEvent
from ..states import item_move
from .clusters import cluster_candidate, cluster_join, cluster_join_audit, pdq_index_add
from .decode import DecodeFailed, animation_previews_limited, video_previews_limited
from .media import BLURRED_KIND, previews_make
from .quarantine import item_demote_if_quarantined
from .routing import item_sightings_with_matches, placement, rank_time
from .storage import MediaStore, media_store, set_pack


def previews_enqueue(item_id: int) -> None:
    """Queue the preview task. If the broker is down the item stays `new` and the sweep
    (tasks.derivatives_sweep) queues it again, so nothing is lost."""
    enqueue("item_previews_task", item_id)


def previews_store(store: MediaStore, previews: dict[str, bytes]) -> dict[str, str]:
    """Write an item's derivatives, each blurred set as one file; returns {kind: file name}
    (the kinds of one set share its name: reveal.preview_fetch reads out each kind's part)."""
    sets: dict[str, dict[str, bytes]] = {}
    names = {}
    for kind, blob in previews.items():
        match = BLURRED_KIND.match(kind)  # a picture's (or contact sheet's) set, or one frame's
        if match:
            sets.setdefault(match.group(1) or "", {})[kind] = blob
        else:
            names[kind] = store.put(blob)
    for parts in sets.values():
        name = store.put(set_pack(parts))
        names.update(dict.fromkeys(parts, name))
    return {kind: names[kind] for kind in previews}


def item_previews_make(*, item_id: int) -> Item:
    """Make the blurred previews of an item (for moving media, a video or an animated picture:
    its contact sheet and sampled frames, made in a limited child), index its PDQ, and put it
    in the review queue, or, as a near-duplicate of a waiting item, in that item's cluster
    (intake/clusters.py).

    Safe to run twice: a second run finds the previews and changes nothing. An item restored
    after a purge gets its previews back and keeps its state. Audited: item.previews_made and
    item.queued (or item.clustered)."""
    # Before the lock, only what the previews and the neighbour lookup need (the media, its
    # kind, its hashes); the item is read whole once locked.
    item = Item.objects.only("previews", "purged_at", "mime_type", "frames", "original_blob", "state", "pdq",
                             "pdq_quality", "frame_pdqs").get(pk=item_id)
    if item.previews or item.purged_at:
        return Item.objects.get(pk=item_id)
    store = media_store()
    frame_times, frame_pdqs = [], []
    if item.is_moving:
        make = video_previews_limited if item.is_video else animation_previews_limited
        try:
            previews, frame_times, frame_pdqs = make(item.original_blob)
        except DecodeFailed as exc:
            return _unreviewable(item_id, str(exc))
    else:
        previews = previews_make(store.get(item.original_blob))
    names = previews_store(store, previews)
    item.frame_pdqs = frame_pdqs if item.is_video else item.frame_pdqs
    near = cluster_candidate(item) if item.state == Item.State.NEW else None
    with transaction.atomic():
        item = Item.objects.select_for_update(no_key=True).get(pk=item_id)
        if item.previews or item.purged_at:
            for name in set(names.values()):
                store.delete(name)
            return item
        item.previews, item.frame_times, item.frame_pdqs = names, frame_times, frame_pdqs
        fields = ["previews", "frame_times", "frame_pdqs"]
        rep, first, sightings = None, item.state == Item.State.NEW, None
        if first:
            item.queued_at = timezone.now()
            sightings = item_sightings_with_matches(item)  # read once: placement, quarantine, events
            for name, value in placement(item, sightings).items():  # priority, queue and rank (intake/routing.py)
                setattr(item, name, value)
            rep = cluster_join(item, near)
            if rep is not None:  # a near-duplicate of a waiting item: reviewed with it
                item.state, item.cluster_of, item.cluster_distance = item_move(item.state, Item.State.CLUSTERED), rep, near[1]
                fields += ["cluster_of", "cluster_distance"]
            else:
                item.state = item_move(item.state, Item.State.QUEUED)
            fields += ["state", "queued_at", "priority", "queue", "rank_at"]
        item.save(update_fields=fields)
        pdq_index_add(item)  # (items waiting when migration 0010 indexed everything are indexed already)
        demoted = rep is None and first and item_demote_if_quarantined(item, sightings)
        made = {"action": "item.previews_made", "subject": item, "item_id": item.pk, "data": {"previews": sorted(names)}}
        if first and rep is None:  # queued on its own: both events in one INSERT
            audit_record_many(actor=None, events=[made, {
                "action": "item.queued", "subject": item, "item_id": item.pk,
                "data": {"from": "new", "to": "queued", **({"quarantined_entry": True} if demoted else {})}}])
        else:
            audit_record(actor=None, **made)
            if rep is not None:
                cluster_join_audit(item, rep, near[1])
        if first:  # a clustered item is "queued" to its scanners too
            item_events(item_id=item.pk, type=ScannerEvent.Type.QUEUED, submissions=sightings)
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
        item.rank_at = rank_time(item.queued_at, item.priority, item.urgent)
        item.save(update_fields=["state", "queued_at", "unreviewable_reason", "rank_at"])
        audit_record(actor=None, action="item.unreviewable", subject=item, item_id=item.pk, data={"reason": item.unreviewable_reason})
    return item


def items_without_previews(*, older_than_seconds: int = 60, limit: int = 1000) -> list[int]:
    """Items left `new` for a while (broker down at intake, a lost task), and items restored
    after a purge whose previews are not back: the sweep queues them again."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(Item.objects.filter(state=Item.State.NEW, created_at__lt=cutoff).values_list("pk", flat=True)[:limit])
    restored = Item.objects.filter(Q(previews={}, purged_at__isnull=True, unreviewable_reason="") & ~Q(state=Item.State.NEW))
    return ids + list(restored.values_list("pk", flat=True)[:limit])
