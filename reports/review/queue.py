"""The queue: items are leased to one person at a time, renewed while the page is open."""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from django.utils import timezone

from ..audit import audit_record
from ..models import Claim, Item, WellnessPolicy
from ..states import item_move
from .reveal import views_close_unreported, views_lock_unreported
from .wellness import CapReached, cap_reached, exposure_today

__all__ = ["CapReached", "item_claim", "claim_skip", "claim_end", "claim_renew", "leases_expire", "queue_counts"]

# Where an item goes back to when a claim ends without a decision.
WAITING_STATE = {Claim.Stage.REVIEW: Item.State.QUEUED, Claim.Stage.QA: Item.State.QA, Claim.Stage.LEAD: Item.State.ESCALATED}
SKIP_MEMORY = timedelta(hours=1)
DEFAULT_STAGES = (Claim.Stage.QA, Claim.Stage.REVIEW)  # reviewers: blind QA first, then first reviews


def queue_counts() -> dict[str, int]:
    """How many items are in each state (the home page's figures)."""
    return dict(Item.objects.values_list("state").annotate(n=Count("id")))


def lease_length() -> timedelta:
    return timedelta(seconds=settings.TSREVIEW_LEASE_SECONDS)


def claim_open_for(user) -> Claim | None:
    return Claim.objects.select_related("item").filter(user=user, end=Claim.End.OPEN).first()


def _candidates(user, stage: str):
    """Waiting items of a stage that this person may take, best first."""
    queryset = Item.objects.filter(state=WAITING_STATE[stage])
    recently_skipped = Claim.objects.filter(user=user, end=Claim.End.SKIPPED, ended_at__gte=timezone.now() - SKIP_MEMORY)
    queryset = queryset.exclude(pk__in=recently_skipped.values("item_id"))
    if stage == Claim.Stage.QA:
        # Blind second review is never by someone who already decided the item.
        queryset = queryset.exclude(decisions__reviewer=user)
    return queryset.order_by("rank_at", "id")


# How many of the best items of each of a reviewer's queues compete for their claim: enough that
# reviewers claiming at once find one not locked by another.
LANE_HEADS = 4


def reviewer_lanes(user) -> list[int | None] | None:
    """The queues a reviewer takes first reviews from (and the general queue, None), or None
    for a reviewer assigned to no queue: they take from all."""
    ids = list(user.review_queues.order_by("pk").values_list("pk", flat=True))
    return [*ids, None] if ids else None


def _lane(queryset, queue_id):
    rows = queryset.filter(queue__isnull=True) if queue_id is None else queryset.filter(queue_id=queue_id)
    return rows.order_by("rank_at", "id")


def _in_lanes(queryset, lanes):
    """The waiting items among the best LANE_HEADS of each of the reviewer's queues, each head
    found by one index scan. On PostgreSQL one statement with the lock (the heads are a UNION
    ALL subquery); where a database cannot order and limit inside a UNION (SQLite, the embedded
    mode), the heads are read first, one query per queue."""
    if connection.features.supports_slicing_ordering_in_compound:
        heads = [_lane(queryset, q).values("id")[:LANE_HEADS] for q in lanes]
        return queryset.filter(pk__in=heads[0].union(*heads[1:], all=True) if len(heads) > 1 else heads[0])
    ids = [pk for q in lanes for pk in _lane(queryset, q).values_list("id", flat=True)[:LANE_HEADS]]
    return queryset.filter(pk__in=ids)


def item_claim(*, user, stages=DEFAULT_STAGES) -> Claim | None:
    """Lease the next item to user: their open claim if they hold one, else the best waiting
    item of the first stage that has one. Raises CapReached at the daily exposure cap.

    Two people never get the same item: candidates are locked with SKIP LOCKED, the state
    change is a conditional update whose row count is checked, and a partial unique index
    allows one open claim per item. Audited: claim.started."""
    current = claim_open_for(user)
    if current:
        return current
    if cap_reached(exposure_today(user), WellnessPolicy.current()):
        raise CapReached
    leases_expire()
    for stage in stages:
        for _ in range(3):  # lost races retry with the next candidate
            claim = _claim_next(user, stage)
            if claim is not False:
                if claim:
                    return claim
                break
    return None


def _claim_next(user, stage):
    now = timezone.now()
    try:
        with transaction.atomic():
            candidates = _candidates(user, stage)
            lanes = reviewer_lanes(user) if stage == Claim.Stage.REVIEW else None
            if lanes:  # the reviewer's queues: the best of each, then the best of those
                candidates = _in_lanes(candidates, lanes)
            item = candidates.select_for_update(no_key=True, skip_locked=True, of=("self",)).first()
            if item is None:
                return None
            waiting = WAITING_STATE[stage]
            taken = Item.objects.filter(pk=item.pk, state=waiting).update(
                state=item_move(waiting, Item.State.CLAIMED), claimed_by=user, lease_until=now + lease_length())
            if not taken:
                return False
            claim = Claim.objects.create(item=item, user=user, stage=stage, started_at=now)
            audit_record(actor=user, action="claim.started", subject=claim, item_id=item.pk,
                         data={"stage": stage, "lease_until": now + lease_length()})
            return claim
    except IntegrityError:
        return False


def claim_renew(*, claim: Claim) -> bool:
    """Extend the lease while the review page is open. False when the claim has ended."""
    updated = Item.objects.filter(pk=claim.item_id, state=Item.State.CLAIMED, claimed_by=claim.user_id).update(
        lease_until=timezone.now() + lease_length())
    return bool(updated) and Claim.objects.filter(pk=claim.pk, end=Claim.End.OPEN).exists()


def claim_end(*, claim: Claim, end: str, actor=None, item_state: str | None = None) -> None:
    """Close a claim and put its item back where it waits (or into item_state). Callers hold a
    transaction; unreported reveals are counted up to now. Audited: claim.<end>."""
    now = timezone.now()
    views_lock_unreported(claim)
    claim.end, claim.ended_at = end, now
    claim.save(update_fields=["end", "ended_at"])
    state = item_move(Item.State.CLAIMED, item_state or WAITING_STATE[claim.stage])
    Item.objects.filter(pk=claim.item_id).update(state=state, claimed_by=None, lease_until=None)
    views_close_unreported(claim, now)
    audit_record(actor=actor or claim.user, action=f"claim.{end}", subject=claim, item_id=claim.item_id,
                 data={"stage": claim.stage, "item_state": state})


def claim_skip(*, claim: Claim) -> None:
    """Hand the item back without a verdict; skipping costs nothing."""
    with transaction.atomic():
        claim = Claim.objects.select_for_update(no_key=True).get(pk=claim.pk)
        if claim.end == Claim.End.OPEN:
            claim_end(claim=claim, end=Claim.End.SKIPPED)


def leases_expire() -> int:
    """Return items whose lease ran out to where they wait. Audited: claim.expired.

    Locks in the usual order (claim, then item). Waiting for those locks is what makes a
    reviewer deciding at the last moment win, and what lets claimers racing to expire the
    same leases each find the item back in the queue afterwards; the conditions are checked
    again once the locks are held."""
    expired = 0
    stale = Item.objects.filter(state=Item.State.CLAIMED, lease_until__lt=timezone.now()).values_list("pk", flat=True)
    for item_id in list(stale[:500]):
        with transaction.atomic():
            claim = Claim.objects.select_for_update(no_key=True).filter(item_id=item_id, end=Claim.End.OPEN).first()
            item = Item.objects.select_for_update(no_key=True).filter(
                pk=item_id, state=Item.State.CLAIMED, lease_until__lt=timezone.now()).first()
            if item is None:
                continue
            if claim is None:  # no open claim row (should not happen): a fresh review, on record
                Item.objects.filter(pk=item.pk).update(state=item_move(item.state, Item.State.QUEUED), claimed_by=None,
                                                       lease_until=None)
                audit_record(actor=None, action="item.requeued", subject=item, item_id=item.pk,
                             data={"from": Item.State.CLAIMED, "to": Item.State.QUEUED, "why": "lease without a claim"})
                continue
            claim_end(claim=claim, end=Claim.End.EXPIRED, actor=None)
            expired += 1
    return expired
