"""The queue: items are leased to one person at a time, renewed while the page is open."""

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from django.utils import timezone

from ..audit import audit_record, audit_record_many
from ..models import Claim, ExposureDay, Item, WellnessPolicy
from ..states import item_move
from .reveal import views_close_unreported, views_lock_unreported
from .wellness import CapReached, cap_reached, exposure_today

__all__ = ["CapReached", "item_claim", "claim_skip", "claim_end", "claim_close", "claim_renew", "leases_expire", "queue_counts"]

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


# The claim's candidate statements are written out: they run on every claim, and building them
# with the ORM cost more than running them (about 3 ms of Python a claim; docs/benchmarks.md §3).
# One text serves PostgreSQL and SQLite: each queue's head is a subquery of its own (SQLite
# cannot order and limit inside a UNION), and only PostgreSQL locks (SQLite serialises writers).
# How many of the best items of each of a reviewer's queues compete for their claim: enough that
# reviewers claiming at once find one not locked by another.
LANE_HEADS = 4
_ORDER = "ORDER BY i.rank_at, i.id"
# Not an item this person skipped in the last SKIP_MEMORY.
_NOT_SKIPPED = ("i.id NOT IN (SELECT c.item_id FROM reports_claim c "
                "WHERE c.user_id = %s AND c.\"end\" = %s AND c.ended_at >= %s)")
# Blind second review is never by someone who already decided the item: one index-only probe
# of decision_reviewer_item per candidate, so the cost does not grow with the reviewer's
# history. OFFSET 0 keeps it a probe: as an anti-join, a young table's statistics (the planner
# believing a reviewer has one decision) made PostgreSQL rescan all the reviewer's decisions
# for every candidate (11.6 ms instead of 0.36 ms with 500 of them; docs/benchmarks.md §3).
_NOT_DECIDED_BY = "NOT EXISTS (SELECT 1 FROM reports_decision d WHERE d.reviewer_id = %s AND d.item_id = i.id{offset})"


def reviewer_lanes(user) -> list[int | None] | None:
    """The queues a reviewer takes first reviews from (and the general queue, None), or None
    for a reviewer assigned to no queue: they take from all."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reviewqueue_id FROM reports_reviewqueue_members WHERE user_id = %s ORDER BY 1", [user.pk])
        ids = [row[0] for row in cursor.fetchall()]
    return _lanes(ids)


def _lanes(ids) -> list[int | None] | None:
    ids = sorted(ids)
    return [*ids, None] if ids else None


def candidate_statement(user, stage: str, lanes: list | None, now) -> tuple[str, list]:
    """The statement that finds (and on PostgreSQL locks, skipping rows others hold) the best
    waiting item of a stage this person may take: by rank, among the heads of their queues when
    they have queues. Returns (sql, params); the statement selects one id or none."""
    skipped = [user.pk, Claim.End.SKIPPED, connection.ops.adapt_datetimefield_value(now - SKIP_MEMORY)]
    postgres = connection.vendor == "postgresql"
    lock = " FOR NO KEY UPDATE OF i SKIP LOCKED" if postgres else ""
    waiting = WAITING_STATE[stage]
    not_decided = _NOT_DECIDED_BY.format(offset=" OFFSET 0" if postgres else "")  # SQLite: no OFFSET without LIMIT
    # Blind QA is never of an item this person decided: in each lane's head too, so that a head
    # full of their own decisions does not hide an item they may take.
    extra, decided = ("", []) if stage != Claim.Stage.QA else (f" AND {not_decided}", [user.pk])
    if not lanes:
        sql = f"SELECT i.id FROM reports_item i WHERE i.state = %s AND {_NOT_SKIPPED}{extra} {_ORDER} LIMIT 1{lock}"
        return sql, [waiting, *skipped, *decided]
    heads, params = [], []
    for n, queue_id in enumerate(lanes):
        lane = "i.queue_id IS NULL" if queue_id is None else "i.queue_id = %s"
        heads.append(f"SELECT id FROM (SELECT i.id FROM reports_item i WHERE i.state = %s AND {lane} AND {_NOT_SKIPPED}"
                     f"{extra} {_ORDER} LIMIT {LANE_HEADS}) AS head{n}")
        params += [waiting, *([] if queue_id is None else [queue_id]), *skipped, *decided]
    sql = f"SELECT i.id FROM reports_item i WHERE i.state = %s AND i.id IN ({' UNION ALL '.join(heads)}) {_ORDER} LIMIT 1{lock}"
    return sql, [waiting, *params]


# Before a claim, one statement: the claim this person holds, today's exposure and the
# policy's caps, whether any lease ran out, and the person's queues (comma-separated ids).
# (Asked through the ORM, these were five queries and about 3.5 ms of Python a claim; this is
# one round trip and 0.3 ms.)
_PREAMBLE = """SELECT (SELECT c.id FROM reports_claim c WHERE c.user_id = %s AND c."end" = %s LIMIT 1),
  (SELECT d.unblurred_seconds FROM reports_exposureday d WHERE d.user_id = %s AND d.day = %s),
  (SELECT d.items FROM reports_exposureday d WHERE d.user_id = %s AND d.day = %s),
  (SELECT p.daily_cap_seconds FROM reports_wellnesspolicy p WHERE p.id = 1),
  (SELECT p.daily_cap_items FROM reports_wellnesspolicy p WHERE p.id = 1),
  EXISTS (SELECT 1 FROM reports_item i WHERE i.state = %s AND i.lease_until < %s),
  (SELECT {lanes} FROM reports_reviewqueue_members m WHERE m.user_id = %s)"""
_LANES = {"postgresql": "string_agg(m.reviewqueue_id::text, ',')", "sqlite": "group_concat(m.reviewqueue_id)"}


def _claim_preamble(user) -> tuple[int | None, ExposureDay, WellnessPolicy, bool, list | None]:
    """(the open claim's id or None, today's exposure, the wellness policy, any lease expired,
    the reviewer's lanes as reviewer_lanes gives them): the exposure and policy unsaved, with
    their defaults where no row exists yet."""
    today = connection.ops.adapt_datefield_value(timezone.localdate())
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(_PREAMBLE.format(lanes=_LANES[connection.vendor]),
                       [user.pk, Claim.End.OPEN, user.pk, today, user.pk, today, Item.State.CLAIMED, now, user.pk])
        held, seconds, items, cap_seconds, cap_items, expired, lanes = cursor.fetchone()
    # The day's first claim makes the day's exposure row (the heartbeat and the caps count on it).
    day = exposure_today(user) if items is None else ExposureDay(user=user, unblurred_seconds=seconds, items=items)
    policy = WellnessPolicy(pk=1)
    if cap_seconds is not None:
        policy.daily_cap_seconds, policy.daily_cap_items = cap_seconds, cap_items
    return held, day, policy, bool(expired), _lanes(int(i) for i in lanes.split(",")) if lanes else None


def item_claim(*, user, stages=DEFAULT_STAGES) -> Claim | None:
    """Lease the next item to user: their open claim if they hold one, else the best waiting
    item of the first stage that has one. Raises CapReached at the daily exposure cap.

    Two people never get the same item: candidates are locked with SKIP LOCKED, the state
    change is a conditional update whose row count is checked, and a partial unique index
    allows one open claim per item. Audited: claim.started."""
    held, day, policy, expired, lanes = _claim_preamble(user)
    current = claim_open_for(user) if held else None
    if current:
        return current
    if cap_reached(day, policy):
        raise CapReached
    if expired:
        leases_expire()
    for stage in stages:
        for _ in range(3):  # lost races retry with the next candidate
            claim = _claim_next(user, stage, None if stage == Claim.Stage.LEAD else lanes)
            if claim is not False:
                if claim:
                    return claim
                break
    return None


def _claim_next(user, stage, lanes):
    now = timezone.now()
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(*candidate_statement(user, stage, lanes, now))
                row = cursor.fetchone()
            if row is None:
                return None
            waiting = WAITING_STATE[stage]
            taken = Item.objects.filter(pk=row[0], state=waiting).update(
                state=item_move(waiting, Item.State.CLAIMED), claimed_by=user, lease_until=now + lease_length())
            if not taken:
                return False
            claim = Claim.objects.create(item_id=row[0], user=user, stage=stage, started_at=now)
            audit_record(actor=user, action="claim.started", subject=claim, item_id=row[0],
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
    views = views_lock_unreported(claim)
    state = item_move(Item.State.CLAIMED, item_state or WAITING_STATE[claim.stage])
    Item.objects.filter(pk=claim.item_id).update(state=state, claimed_by=None, lease_until=None)
    claim_close(claim=claim, end=end, actor=actor or claim.user, views=views, item_state=state)


def claim_close(*, claim: Claim, end: str, actor, views, item_state: str, also=()) -> None:
    """The claim's own end, once its item has moved on (to item_state): the row, its unreported
    reveals (`views`, locked by the caller) counted up to now. Audited: claim.<end>, after the
    caller's events `also` (audit_record_many's dicts, by the same actor) in the same INSERT."""
    now = timezone.now()
    claim.end, claim.ended_at = end, now
    claim.save(update_fields=["end", "ended_at"])
    views_close_unreported(views, now)
    audit_record_many(actor=actor, events=[*also, {"action": f"claim.{end}", "subject": claim, "item_id": claim.item_id,
                                                   "data": {"stage": claim.stage, "item_state": item_state}}])


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
