"""What leads read: the decision log, an item's timeline and history, escalations."""

from django.contrib.auth import get_user_model
from django.db import transaction

from ..audit import audit_record
from ..models import AuditEvent, Claim, Decision, Item, Match


def decision_log(*, reviewer=None, verdict="", classification="", hash_list="", source_type="", date_from=None, date_to=None):
    """Decisions matching a lead's filter, newest first."""
    decisions = Decision.objects.select_related("item", "supersedes").order_by("-decided_at", "-id")
    if reviewer:
        decisions = decisions.filter(reviewer=reviewer)
    if verdict:
        decisions = decisions.filter(verdict=verdict)
    if classification:
        decisions = decisions.filter(classification=classification)
    if hash_list:
        decisions = decisions.filter(item__submissions__matches__list_name=hash_list)
    if source_type:
        decisions = decisions.filter(item__submissions__source_type=source_type)
    if date_from:
        decisions = decisions.filter(decided_at__date__gte=date_from)
    if date_to:
        decisions = decisions.filter(decided_at__date__lte=date_to)
    if hash_list or source_type:
        decisions = decisions.distinct()
    return decisions


# --- The timeline ------------------------------------------------------------------------------

def _describe(event: AuditEvent) -> str:
    d = event.data
    who = event.actor_name
    texts = {
        "item.created": lambda: f"{who} stored new bytes ({d.get('mime_type')}, {d.get('size_bytes')} bytes)",
        "submission.created": lambda: f"{who} pushed {d.get('external_id')}" + (" (bytes already known)" if d.get("duplicate") else ""),
        "submission.provenance_updated": lambda: f"{who} added provenance",
        "item.previews_made": lambda: "blurred previews made",
        "item.queued": lambda: "waiting for review",
        "claim.started": lambda: f"{who} claimed it ({d.get('stage')})",
        "claim.decided": lambda: f"{who}'s claim ended with a decision",
        "claim.skipped": lambda: f"{who} skipped it",
        "claim.expired": lambda: "a lease expired; back to the queue",
        "media.preview": lambda: f"{who} saw the blurred {d.get('kind')} preview",
        "media.original": lambda: f"{who} revealed the original ({d.get('mode')})",
        "media.view_ended": lambda: f"{who}'s reveal lasted {d.get('counted')} s",
        "decision.recorded": lambda: f"{who} decided: {_verdict_text(d)}" + (" · viewed unblurred" if d.get("viewed_unblurred") else " · not viewed"),
        "decision.overturned": lambda: f"{who} overturned {d['old']['verdict']} → {_verdict_text(d['new'])}: {d.get('note')}",
    }
    return texts.get(event.action, lambda: f"{who}: {event.action}")()


def _verdict_text(d: dict) -> str:
    return " ".join(x for x in (d.get("verdict"), d.get("classification"), d.get("reason")) if x)


def item_timeline(item: Item) -> list[dict]:
    """Everything that happened to an item, in order, from the audit log (the one record
    that every stage writes)."""
    events = AuditEvent.objects.filter(item_id=item.pk).order_by("id")
    return [{"at": e.at, "actor": e.actor_name, "action": e.action, "text": _describe(e), "id": e.pk} for e in events]


def escalated_items():
    """Items waiting for a lead: reviewers were unsure, or QA disagreed."""
    return Item.objects.filter(state=Item.State.ESCALATED).order_by("-priority", "queued_at").prefetch_related("decisions")


def decision_history(item: Item):
    """Every decision on the item, oldest first (overturns and what they superseded)."""
    return item.decisions.select_related("supersedes").order_by("decided_at", "id")


def disagreement(item: Item) -> bool:
    stages = {d.stage: d.verdict for d in item.decisions.all()}
    return Claim.Stage.QA in stages and stages.get(Claim.Stage.REVIEW) not in (None, stages[Claim.Stage.QA])


def item_views(item: Item):
    return item.views.select_related("user").order_by("started_at")


def decisions_exported(*, actor, filters: dict) -> None:
    """A lead downloads the decision log. Audited: decisions.exported with the filter."""
    with transaction.atomic():
        audit_record(actor=actor, action="decisions.exported", data={"filter": filters})


def people_who_decided():
    """Everyone with a decision on record, for the decision log's filter."""
    return get_user_model().objects.filter(decisions__isnull=False).distinct().order_by("username")


def hash_list_names() -> list[str]:
    return list(Match.objects.order_by("list_name").values_list("list_name", flat=True).distinct())
