"""The lead workspace: the decision log, an item's timeline, overturns, reviewer statistics."""

import statistics
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .audit import audit_record
from .decisions import DecisionInvalid, _validate
from .models import AuditEvent, Claim, Decision, ExposureDay, Item, ReportFile, ViewEvent, WellnessPolicy
from .reporting import SENDING, ReportInvalid, report_files_withdraw


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


def decision_overturn(*, lead, item: Item, verdict: str, classification: str = "", reason: str = "", note: str) -> Decision:
    """A lead replaces the standing verdict with a new decision that supersedes it (decisions
    are never edited). The lead's own recorded reveal counts for a confirmation. Audited:
    decision.overturned."""
    if not note.strip():
        raise DecisionInvalid({"note": "An overturn needs a reason."})
    if verdict == Decision.Verdict.ESCALATED:
        raise DecisionInvalid({"verdict": "An overturn is confirm or not apparent CSAM."})
    _validate(verdict, classification, reason, [], note, Claim.Stage.LEAD)
    viewed = ViewEvent.objects.filter(item=item, user=lead).exists()
    if verdict == Decision.Verdict.CONFIRMED and settings.TSREVIEW_REQUIRE_VIEW_TO_CONFIRM and not viewed:
        raise DecisionInvalid({"verdict": "Reveal the file before confirming it: a confirmation needs a recorded view."})
    with transaction.atomic():
        item = Item.objects.select_for_update(no_key=True).get(pk=item.pk)
        standing = item.decisions.exclude(verdict=Decision.Verdict.ESCALATED).order_by("-decided_at", "-id").first()
        if item.state != Item.State.DECIDED or standing is None:
            raise DecisionInvalid({"verdict": "Only a decided item can be overturned."})
        try:
            if verdict != Decision.Verdict.CONFIRMED:
                report_files_withdraw(actor=lead, item=item)
            elif ReportFile.objects.filter(item=item, report__state__in=SENDING).exists():
                raise ReportInvalid({"item": "A report with this item is being sent; wait until it is finished or failed."})
        except ReportInvalid as exc:
            raise DecisionInvalid({"verdict": exc.errors["item"]}) from None
        now = timezone.now()
        decision = Decision.objects.create(
            item=item, reviewer=lead, reviewer_name=lead.get_username(), stage=Claim.Stage.LEAD, verdict=verdict,
            classification=classification if verdict == Decision.Verdict.CONFIRMED else "",
            reason=reason if verdict == Decision.Verdict.NOT_CSAM else "", note=note.strip(),
            viewed_unblurred=viewed, supersedes=standing, started_at=now, decided_at=now)
        Item.objects.filter(pk=item.pk).update(verdict=verdict, decided_at=now)
        audit_record(actor=lead, action="decision.overturned", subject=decision, item_id=item.pk,
                     data={"supersedes": standing.pk, "old": {"verdict": standing.verdict, "classification": standing.classification,
                                                              "reason": standing.reason},
                           "new": {"verdict": verdict, "classification": decision.classification, "reason": decision.reason},
                           "note": decision.note})
    return decision


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


# --- Statistics ---------------------------------------------------------------------------------

def _percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def reviewer_stats(*, days: int = 14) -> dict:
    """Per reviewer and for the team: decisions per day, median time per decision, agreement
    with blind QA, overturn rate; and exposure as a distribution. Alphabetical: not a ranking."""
    since = timezone.now() - timedelta(days=days)
    decisions = list(Decision.objects.filter(decided_at__gte=since).values(
        "id", "item_id", "reviewer__username", "stage", "verdict", "started_at", "decided_at", "supersedes_id"))
    by_item = defaultdict(list)
    for d in decisions:
        by_item[d["item_id"]].append(d)
    overturned = {d["supersedes_id"] for d in decisions if d["supersedes_id"]}
    people = defaultdict(lambda: {"decisions": 0, "seconds": [], "qa_checked": 0, "qa_agreed": 0, "overturned": 0, "days": set()})
    for d in decisions:
        if d["stage"] == Claim.Stage.LEAD and d["supersedes_id"]:
            continue  # an overturn is the lead's correction, not their review work
        row = people[d["reviewer__username"]]
        row["decisions"] += 1
        row["days"].add(d["decided_at"].date())
        if d["started_at"]:
            row["seconds"].append((d["decided_at"] - d["started_at"]).total_seconds())
        row["overturned"] += d["id"] in overturned
        if d["stage"] == Claim.Stage.REVIEW and d["verdict"] != Decision.Verdict.ESCALATED:
            qa = [x for x in by_item[d["item_id"]] if x["stage"] == Claim.Stage.QA and x["decided_at"] > d["decided_at"]]
            if qa:
                row["qa_checked"] += 1
                row["qa_agreed"] += qa[0]["verdict"] == d["verdict"]
    rows = [_stat_row(name, row, days) for name, row in sorted(people.items())]
    team = _stat_row("Team", {
        "decisions": sum(r["decisions"] for r in people.values()),
        "seconds": [s for r in people.values() for s in r["seconds"]],
        "qa_checked": sum(r["qa_checked"] for r in people.values()),
        "qa_agreed": sum(r["qa_agreed"] for r in people.values()),
        "overturned": sum(r["overturned"] for r in people.values()),
        "days": set(),
    }, days)
    return {"rows": rows, "team": team, "days": days, "exposure": exposure_distribution()}


def _stat_row(name, row, days) -> dict:
    return {
        "name": name,
        "decisions": row["decisions"],
        "per_day": round(row["decisions"] / days, 1),
        "median_seconds": round(statistics.median(row["seconds"]), 1) if row["seconds"] else None,
        "qa_checked": row["qa_checked"],
        "agreement": round(100 * row["qa_agreed"] / row["qa_checked"]) if row["qa_checked"] else None,
        "overturn_rate": round(100 * row["overturned"] / row["decisions"]) if row["decisions"] else None,
    }


def exposure_distribution(day=None) -> dict:
    """Today's team exposure: median and p90 of unblurred seconds, how many are over the cap,
    and who is past 80 % of it (for a check-in, not a score)."""
    policy = WellnessPolicy.current()
    rows = list(ExposureDay.objects.filter(day=day or timezone.localdate()).select_related("user"))
    seconds = [r.unblurred_seconds for r in rows]
    near = sorted(r.user.get_username() for r in rows if r.unblurred_seconds >= 0.8 * policy.daily_cap_seconds
                  or r.items >= 0.8 * policy.daily_cap_items)
    return {
        "reviewers": len(rows),
        "median": round(statistics.median(seconds), 1) if seconds else 0,
        "p90": round(_percentile(seconds, 0.9), 1),
        "over_cap": sum(1 for r in rows if r.unblurred_seconds >= policy.daily_cap_seconds or r.items >= policy.daily_cap_items),
        "near_cap": near,
        "cap_seconds": policy.daily_cap_seconds,
    }


def escalated_items():
    """Items waiting for a lead: reviewers were unsure, or QA disagreed."""
    return Item.objects.filter(state=Item.State.ESCALATED).order_by("-priority", "queued_at").prefetch_related("decisions")


def standing_decisions(item: Item):
    return item.decisions.select_related("supersedes").order_by("decided_at", "id")


def disagreement(item: Item) -> bool:
    stages = {d.stage: d.verdict for d in item.decisions.all()}
    return Claim.Stage.QA in stages and stages.get(Claim.Stage.REVIEW) not in (None, stages[Claim.Stage.QA])

