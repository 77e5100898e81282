"""Reviewer statistics and team exposure for leads: distributions, never a ranking."""

import statistics
from collections import defaultdict
from datetime import timedelta

from django.utils import timezone

from ..models import Claim, Decision, ExposureDay, WellnessPolicy


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
