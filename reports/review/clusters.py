"""Clusters in review: a representative and the near-duplicates waiting with it (state
`clustered`, see intake/clusters.py) are one task. The cluster decision itself is recorded by
decisions.decision_record (`ticked`); here are the members, their return to the queue, a
lead's split, and the looks clustering avoided."""

from datetime import timedelta

from django.db import transaction
from django.db.models import Count, Exists, Q
from django.utils import timezone

from ..audit import audit_record
from ..errors import Refused
from ..models import Decision, Item
from ..states import item_move


def cluster_members(rep_id: int) -> list[Item]:
    """The items waiting with a representative, nearest first."""
    return list(Item.objects.filter(cluster_of_id=rep_id, state=Item.State.CLUSTERED).order_by("cluster_distance", "id"))


def cluster_exists(rep_id) -> Exists:
    """Whether any item waits with the representative (an expression: rep_id may be an OuterRef)."""
    return Exists(Item.objects.filter(cluster_of_id=rep_id, state=Item.State.CLUSTERED))


def cluster_members_lock(rep_id: int) -> list[Item]:
    """The same, locked (after the claim and its views: the lock order of docs/architecture.md)."""
    return list(Item.objects.select_for_update(no_key=True).filter(cluster_of_id=rep_id, state=Item.State.CLUSTERED)
                .order_by("pk"))


def member_requeue(member: Item, *, actor, why: str) -> None:
    """A member leaves its cluster and waits as its own item (keeping its place by age). The
    caller holds the transaction and the member's lock. Audited: item.unclustered."""
    rep_id = member.cluster_of_id
    Item.objects.filter(pk=member.pk).update(state=item_move(member.state, Item.State.QUEUED), cluster_of=None)
    audit_record(actor=actor, action="item.unclustered", subject=member, item_id=member.pk,
                 data={"from": Item.State.CLUSTERED, "to": Item.State.QUEUED, "representative": rep_id,
                       "distance": member.cluster_distance, "why": why})


def cluster_split(*, lead, rep_id: int, member_ids) -> list[int]:
    """A lead takes wrong members out of a cluster: each is reviewed on its own. Refused when a
    named item is not waiting in this cluster. Returns the ids split off."""
    wanted = {int(m) for m in member_ids}
    if not wanted:
        raise Refused({"members": "Choose the members to split off."})
    with transaction.atomic():
        members = {m.pk: m for m in cluster_members_lock(rep_id)}
        strangers = sorted(wanted - set(members))
        if strangers:
            raise Refused({"members": f"Not waiting in this cluster: {', '.join(map(str, strangers))}."})
        for pk in sorted(wanted):
            member_requeue(members[pk], actor=lead, why="split off by a lead")
    return sorted(wanted)


def looks_avoided(*, user=None, since=None) -> int:
    """Decisions a cluster decision made for a file its reviewer did not reveal: looks avoided."""
    rows = Decision.objects.filter(cluster_decision__isnull=False, viewed_unblurred=False)
    if user is not None:
        rows = rows.filter(reviewer=user)
    if since is not None:
        rows = rows.filter(decided_at__gte=since)
    return rows.count()


def looks_avoided_today(user) -> int:
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return looks_avoided(user=user, since=start)


def cluster_stats(days: int = 7) -> dict:
    """For the team page: cluster decisions, member decisions and looks avoided in `days` days."""
    since = timezone.now() - timedelta(days=days)
    members = Decision.objects.filter(cluster_decision__isnull=False, decided_at__gte=since).aggregate(
        decisions=Count("id"), avoided=Count("id", filter=Q(viewed_unblurred=False)),
        tasks=Count("cluster_decision", distinct=True))
    return {"days": days, **members}
