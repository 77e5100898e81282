"""Quarantine of over-matching list entries (HMA's "quarantine a single over-matching signal").

A list entry with FeedbackPolicy.quarantine_after (K, default 3) not apparent CSAM verdicts
since its last lift and no confirmation ever is quarantined. Its matches are still queued, but
before any reveal the reviewer reads "entry quarantined: N false matches", and such items wait
below the others: their priority is lowered by PENALTY and Item.quarantined remembers it, so the
claim order keeps using its index. A lead lifts a quarantine; every step is audited.

It sits in intake because both intake (a new item matching a quarantined entry) and review (a
verdict that tips an entry over) use it.
"""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from ..audit import audit_record
from ..errors import Refused
from ..jobs import enqueue
from ..models import EntryQuarantine, FeedbackPolicy, Item, Match, PriorityPolicy

PENALTY = 10_000


def _entries_of(item_id: int) -> set[tuple[str, str]]:
    return set(Match.objects.filter(submission__item_id=item_id).exclude(list_entry_id="")
               .values_list("list_name", "list_entry_id"))


def _decided_items(list_name: str, entry: str, also: int | None = None):
    """Decided items matched by the entry (and `also`, an item being decided right now)."""
    matched = Match.objects.filter(list_name=list_name, list_entry_id=entry).values("submission__item_id")
    return Item.objects.filter(Q(state=Item.State.DECIDED) | Q(pk=also or 0), pk__in=matched)


def false_matches(list_name: str, entry: str, also: int | None = None) -> int:
    """Not apparent CSAM verdicts standing on the entry's matches since its last lift."""
    last_lift = (EntryQuarantine.objects.filter(list_name=list_name, list_entry_id=entry, lifted_at__isnull=False)
                 .order_by("-lifted_at").values_list("lifted_at", flat=True).first())
    false = _decided_items(list_name, entry, also).filter(verdict=Item.Verdict.NOT_CSAM)
    return false.filter(decided_at__gt=last_lift).count() if last_lift else false.count()


def entries_review(*, item_id: int, verdict: str) -> list[EntryQuarantine]:
    """After an item's verdict stands (the caller holds its transaction and has set the item's
    verdict; its state may still be `claimed`, so it is counted by id): quarantine each of
    its list entries that now has K false matches since its last lift and no confirmation.
    Waiting items are demoted by a task when the transaction commits, not here: other deciders
    hold other items' rows in their own transactions, and taking those here could wait in a
    circle; nothing here updates an existing row, for the same reason. Audited: entry.quarantined."""
    if verdict != Item.Verdict.NOT_CSAM:
        return []  # only a false match can tip an entry over
    entries = _entries_of(item_id)
    if not entries:
        return []
    k = FeedbackPolicy.current().quarantine_after
    condition = Q()
    for list_name, entry in entries:
        condition |= Q(list_name=list_name, list_entry_id=entry)
    active, last_lift = set(), {}
    for q in EntryQuarantine.objects.filter(condition).only("list_name", "list_entry_id", "lifted_at"):
        key = (q.list_name, q.list_entry_id)
        if q.lifted_at is None:
            active.add(key)
        else:
            last_lift[key] = max(last_lift.get(key, q.lifted_at), q.lifted_at)
    made = []
    for list_name, entry in sorted(entries - active):
        since = last_lift.get((list_name, entry))
        false_filter = Q(verdict=Item.Verdict.NOT_CSAM) & (Q(decided_at__gt=since) if since else Q())
        counts = _decided_items(list_name, entry, also=item_id).aggregate(
            false=Count("pk", filter=false_filter), confirmed=Count("pk", filter=Q(verdict=Item.Verdict.CONFIRMED)))
        if counts["false"] >= k and not counts["confirmed"]:
            made += _quarantine(list_name, entry, counts["false"], k, item_id)
    return made


def _quarantine(list_name: str, entry: str, false: int, k: int, item_id: int) -> list[EntryQuarantine]:
    try:
        with transaction.atomic():  # a concurrent verdict may have made it: one active row per entry
            quarantine = EntryQuarantine.objects.create(list_name=list_name, list_entry_id=entry,
                                                        false_matches=false, quarantined_at=timezone.now())
    except IntegrityError:
        return []
    audit_record(actor=None, action="entry.quarantined", subject=quarantine, item_id=item_id,
                 data={"list": list_name, "entry": entry, "false_matches": false, "after": k})
    transaction.on_commit(lambda q=quarantine.pk: enqueue("entry_quarantine_apply_task", q))
    return [quarantine]


def _waiting_with(list_name: str, entry: str):
    return Item.objects.exclude(state=Item.State.DECIDED).filter(
        submissions__matches__list_name=list_name, submissions__matches__list_entry_id=entry)


def quarantine_apply(*, quarantine_id: int) -> int:
    """Demote the undecided items that match a quarantined entry (once each). Audited:
    entry.items_demoted with how many."""
    with transaction.atomic():
        quarantine = EntryQuarantine.objects.get(pk=quarantine_id)
        if quarantine.lifted_at:
            return 0
        ids = list(_waiting_with(quarantine.list_name, quarantine.list_entry_id).filter(quarantined=False)
                   .values_list("pk", flat=True).distinct())
        count = Item.objects.filter(pk__in=ids, quarantined=False).update(
            quarantined=True, priority=F("priority") - PENALTY, rank_at=F("rank_at") + _penalty_time())
        if count:
            audit_record(actor=None, action="entry.items_demoted", subject=quarantine,
                         data={"list": quarantine.list_name, "entry": quarantine.list_entry_id, "items": count})
    return count


def _penalty_time() -> timedelta:
    """What PENALTY points are worth in the claim order (intake/routing.py: a point is
    seconds_per_point of waiting)."""
    return timedelta(seconds=PENALTY * PriorityPolicy.current().seconds_per_point)


def item_demote_if_quarantined(item: Item, sightings=None) -> bool:
    """A new item whose match is to a quarantined entry waits below the others from the start
    (the caller holds the item's transaction and audits its queueing). `sightings`, when the
    caller has read them with their matches (routing.item_sightings_with_matches, which says of
    each match whether its entry is quarantined), spares reading the quarantines again."""
    if sightings is None:
        active = bool(_active_for(item.pk))
    else:
        active = any(m.entry_quarantined for s in sightings for m in s.matches.all())
    if not active or item.quarantined:
        return False
    Item.objects.filter(pk=item.pk).update(quarantined=True, priority=F("priority") - PENALTY,
                                           rank_at=F("rank_at") + _penalty_time())
    item.quarantined, item.priority = True, item.priority - PENALTY
    item.refresh_from_db(fields=["rank_at"])
    return True


def _active_for(item_id: int):
    entries = _entries_of(item_id)
    if not entries:
        return []
    condition = Q()
    for list_name, entry in entries:
        condition |= Q(list_name=list_name, list_entry_id=entry)
    return list(EntryQuarantine.objects.filter(condition, lifted_at__isnull=True).order_by("list_name", "list_entry_id"))


def quarantines_for(item: Item) -> list[EntryQuarantine]:
    """What the review page says before any reveal: the item's quarantined entries, each with
    its false matches counted now (count_now)."""
    active = _active_for(item.pk)
    for quarantine in active:
        quarantine.count_now = false_matches(quarantine.list_name, quarantine.list_entry_id)
    return active


def quarantines_active():
    return EntryQuarantine.objects.filter(lifted_at__isnull=True).order_by("-quarantined_at")


def quarantine_lift(*, actor, quarantine: EntryQuarantine, reason: str) -> EntryQuarantine:
    """A lead lifts a quarantine: its items go back to their place in the queue (unless another
    quarantined entry keeps them down), and counting starts again from now. The view checked
    the role. Audited: entry.quarantine_lifted."""
    reason = reason.strip()
    if not reason:
        raise Refused({"reason": "Say why the quarantine is lifted."})
    with transaction.atomic():
        quarantine = EntryQuarantine.objects.select_for_update(no_key=True).get(pk=quarantine.pk)
        if quarantine.lifted_at:
            raise Refused({"quarantine": "This quarantine was already lifted."})
        quarantine.lifted_at, quarantine.lifted_by, quarantine.lift_reason = timezone.now(), actor, reason
        quarantine.save(update_fields=["lifted_at", "lifted_by", "lift_reason"])
        restored = 0
        for item_id in _waiting_with(quarantine.list_name, quarantine.list_entry_id).filter(quarantined=True) \
                .values_list("pk", flat=True).distinct():
            if not _active_for(item_id):
                restored += Item.objects.filter(pk=item_id, quarantined=True).update(
                    quarantined=False, priority=F("priority") + PENALTY, rank_at=F("rank_at") - _penalty_time())
        audit_record(actor=actor, action="entry.quarantine_lifted", subject=quarantine,
                     data={"list": quarantine.list_name, "entry": quarantine.list_entry_id,
                           "false_matches": quarantine.false_matches, "reason": reason, "items_restored": restored})
    return quarantine
