"""Priority and routing: where an item waits and how soon it is taken (docs/priority.md).

The PriorityPolicy scores an item from its sightings (the best of each term over all of them):
the list's label (A1 above B2), the source (a live user upload with a known uploader above a
dataset), the list, and the closest match's distance relative to the scanner's threshold.
Waiting time is the last term: the claim order is one column, `rank_at` = queued_at brought
forward by priority × seconds_per_point, so an item that has waited long enough passes a
fresher one of higher priority, and the order stays a single index scan. A lead's urgent flag
puts an item ahead of all others (URGENT_AHEAD). Named queues route items to teams."""

from collections import defaultdict
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL

from ..audit import audit_record
from ..models import EntryQuarantine, Item, Match, PriorityPolicy, ReviewQueue, Submission

URGENT_AHEAD = timedelta(days=365 * 50)
PRIORITY_MAX = 32000  # the column is a smallint


def item_sightings_with_matches(item: Item) -> list[Submission]:
    """The item's sightings, oldest first, with their matches and scanners (for scoring,
    routing, quarantine and the scanners' events, read once). Each match says whether its list
    entry is quarantined now (`entry_quarantined`, read with it: intake/quarantine.py)."""
    sightings = list(Submission.objects.filter(item=item).select_related("scanner").order_by("created_at", "pk"))
    by_sighting = defaultdict(list)
    for match in Match.objects.filter(submission__item=item).annotate(entry_quarantined=_entry_quarantined()):
        by_sighting[match.submission_id].append(match)
    for sighting in sightings:
        sighting.item = item
        # As prefetch_related leaves it: sighting.matches.all() is this list, unread again.
        matches = Match.objects.filter(submission=sighting)
        matches._result_cache, matches._prefetch_done = by_sighting[sighting.pk], True
        sighting._prefetched_objects_cache = {"matches": matches}
    return sightings


def _entry_quarantined() -> RawSQL:
    """Whether a match's list entry is quarantined now, as a column of the match. Written out:
    the ORM's Exists() cost more to build (~0.45 ms) than the query it spared takes."""
    quote, match = connection.ops.quote_name, connection.ops.quote_name(Match._meta.db_table)
    return RawSQL(f"EXISTS (SELECT 1 FROM {quote(EntryQuarantine._meta.db_table)} q WHERE q.list_name = {match}.list_name "
                  f"AND q.list_entry_id = {match}.list_entry_id AND q.lifted_at IS NULL AND {match}.list_entry_id <> '')",
                  [], output_field=BooleanField())


def _source_key(submission: Submission) -> str:
    source = submission.source_type
    uploader = (submission.provenance or {}).get("uploader") or {}
    if source == "user_upload" and any(uploader.get(k) for k in ("esp_identifier", "screen_name", "email", "profile_url")):
        return "user_upload_with_uploader"
    return source


def _distance_share(match: Match) -> float:
    """1 for an exact or distance-0 match, falling to 0 at the scanner's threshold."""
    if match.hash_type in ("md5", "sha1", "sha256"):
        return 1.0
    if match.distance is None or not match.threshold:
        return 0.0
    return max(0.0, 1.0 - float(match.distance) / float(match.threshold))


def priority_score(item: Item, policy: PriorityPolicy | None = None, sightings=None) -> int:
    """The policy's score of an item (without waiting time and the urgent flag)."""
    policy = policy or PriorityPolicy.current()
    sightings = item_sightings_with_matches(item) if sightings is None else sightings
    matches = [m for s in sightings for m in s.matches.all()]
    label = max((int(policy.label_points.get(m.label, 0)) for m in matches), default=0)
    source = max((int(policy.source_points.get(_source_key(s), 0)) for s in sightings), default=0)
    bank = max((int(policy.list_points.get(m.list_name, 0)) for m in matches), default=0)
    distance = max((round(policy.distance_points * _distance_share(m)) for m in matches), default=0)
    return max(-PRIORITY_MAX, min(PRIORITY_MAX, label + source + bank + distance))


def rank_time(queued_at, priority: int, urgent: bool, policy: PriorityPolicy | None = None):
    """When an item counts as waiting since: the claim order, earliest first."""
    if queued_at is None:
        return None
    policy = policy or PriorityPolicy.current()
    rank = queued_at - timedelta(seconds=priority * policy.seconds_per_point)
    return rank - URGENT_AHEAD if urgent else rank


def _matches_rule(queue: ReviewQueue, item: Item, sightings) -> bool:
    if queue.media == ReviewQueue.Media.VIDEO and not item.is_video:
        return False
    if queue.media == ReviewQueue.Media.IMAGE and item.is_video:
        return False
    matches = [m for s in sightings for m in s.matches.all()]
    if queue.source_types and not {s.source_type for s in sightings} & set(queue.source_types):
        return False
    if queue.labels and not {m.label for m in matches} & set(queue.labels):
        return False
    return not (queue.lists and not {m.list_name for m in matches} & set(queue.lists))


def route(item: Item, sightings=None, queues=None) -> ReviewQueue | None:
    """The first queue whose rule the item meets, or None (the general queue). `queues`: the
    named queues in order, when the caller routes many items."""
    sightings = item_sightings_with_matches(item) if sightings is None else sightings
    for queue in ReviewQueue.objects.all() if queues is None else queues:
        if _matches_rule(queue, item, sightings):
            return queue
    return None


def placement(item: Item, sightings=None) -> dict:
    """The fields an item gets as it starts waiting (its queued_at already set): priority,
    queue and rank. The caller saves them with the state change."""
    policy = PriorityPolicy.current()
    sightings = item_sightings_with_matches(item) if sightings is None else sightings
    priority = priority_score(item, policy, sightings)
    return {"priority": priority, "queue": route(item, sightings),
            "rank_at": rank_time(item.queued_at, priority, item.urgent, policy)}


def rank_refresh(item_id: int) -> None:
    """Recompute an item's rank from its stored priority, urgency and queued_at (the caller
    holds the transaction)."""
    item = Item.objects.only("queued_at", "priority", "urgent").get(pk=item_id)
    Item.objects.filter(pk=item_id).update(rank_at=rank_time(item.queued_at, item.priority, item.urgent))


def item_urgent_set(*, item_id: int, urgent: bool, actor, why: str = "") -> Item:
    """A lead's urgent flag (e.g. from a report escalated to high priority): the item goes
    ahead of every other waiting item, or back to its place. Audited: item.urgent."""
    with transaction.atomic():
        item = Item.objects.select_for_update(no_key=True).get(pk=item_id)
        if item.urgent == urgent:
            return item
        item.urgent = urgent
        item.rank_at = rank_time(item.queued_at, item.priority, urgent)
        item.save(update_fields=["urgent", "rank_at"])
        audit_record(actor=actor, action="item.urgent", subject=item, item_id=item.pk,
                     data={"urgent": urgent, "why": why[:500]})
    return item


def priorities_recompute(*, batch: int = 1000) -> int:
    """Score and route every waiting item again under the current policy and queues (after an
    admin changes them). Returns how many changed. Audited once: priority.recomputed."""
    waiting = (Item.State.QUEUED, Item.State.CLUSTERED, Item.State.QA, Item.State.ESCALATED)
    changed, last = 0, 0
    policy, queues = PriorityPolicy.current(), list(ReviewQueue.objects.all())
    while True:
        items = list(Item.objects.filter(state__in=waiting, pk__gt=last).order_by("pk")[:batch])
        if not items:
            break
        for item in items:
            sightings = item_sightings_with_matches(item)
            priority = priority_score(item, policy, sightings)
            queue = route(item, sightings, queues)
            rank = rank_time(item.queued_at, priority, item.urgent, policy)
            if (priority, queue and queue.pk, rank) != (item.priority, item.queue_id, item.rank_at):
                Item.objects.filter(pk=item.pk).update(priority=priority, queue=queue, rank_at=rank)
                changed += 1
        last = items[-1].pk
    with transaction.atomic():
        audit_record(actor=None, action="priority.recomputed", data={"changed": changed})
    return changed
