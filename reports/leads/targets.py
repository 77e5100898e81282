"""Time targets per priority tier (settings.TSREVIEW_TIME_TARGETS, docs/priority.md): how long
items wait per queue, how long decisions and reports take, which items are past their target,
and the one email that tells leads of a new breach."""

from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, Min, OuterRef, Q
from django.utils import timezone

from ..audit import audit_record
from ..models import Decision, Item, ReportFile, ReviewQueue, Role, TargetBreach

WAITING = (Item.State.QUEUED, Item.State.CLUSTERED, Item.State.CLAIMED)


def tiers() -> list[dict]:
    return settings.TSREVIEW_TIME_TARGETS


def tier_for(priority: int, urgent: bool) -> dict:
    for tier in tiers():
        if tier.get("urgent"):
            if urgent:
                return tier
        elif priority >= tier.get("min_priority", -32768):
            return tier
    return tiers()[-1]


def _tier_filter(tier: dict) -> Q:
    """The items a tier applies to (the first tier they meet)."""
    if tier.get("urgent"):
        return Q(urgent=True)
    cond = Q(urgent=False, priority__gte=tier.get("min_priority", -32768))
    for earlier in tiers():
        if earlier is tier:
            break
        if not earlier.get("urgent"):
            cond &= Q(priority__lt=earlier.get("min_priority", -32768))
    return cond


def _percentiles(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    ordered = sorted(values)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def past_target(*, now=None, limit: int = 200) -> list[dict]:
    """Items past their target now: waiting for a first review too long since intake, or
    confirmed too long ago without a finished report."""
    now = now or timezone.now()
    found = []
    no_decision = ~Exists(Decision.objects.filter(item=OuterRef("pk")))
    finished = Exists(ReportFile.objects.filter(item=OuterRef("pk"), report__state="finished"))
    for tier in tiers():
        first = timedelta(minutes=tier["first_review_minutes"])
        rows = Item.objects.filter(_tier_filter(tier), state__in=WAITING, created_at__lt=now - first).filter(no_decision)
        for item in rows.order_by("created_at")[:limit]:
            found.append(_found(item, TargetBreach.Kind.FIRST_REVIEW, tier, first, now - item.created_at))
        report = timedelta(hours=tier["report_hours"])
        rows = Item.objects.filter(_tier_filter(tier), state=Item.State.DECIDED, verdict=Item.Verdict.CONFIRMED,
                                   purged_at__isnull=True, decided_at__lt=now - report).exclude(finished)
        for item in rows.order_by("decided_at")[:limit]:
            found.append(_found(item, TargetBreach.Kind.REPORT, tier, report, now - item.decided_at))
    return found


def _found(item, kind, tier, target, age) -> dict:
    return {"item": item, "kind": kind, "tier": tier["tier"], "target_seconds": int(target.total_seconds()),
            "age_seconds": age.total_seconds(), "target_text": _human(target.total_seconds()),
            "age_text": _human(age.total_seconds())}


def queue_overview(*, days: int = 7, now=None) -> list[dict]:
    """Per queue (and the general one): waiting items, the oldest's age, and intake→decision
    and decision→report p50/p90 over the last `days` days."""
    now = now or timezone.now()
    since = now - timedelta(days=days)
    queues = [(q.pk, q.name) for q in ReviewQueue.objects.all()] + [(None, "general")]
    waiting = {row["queue"]: row for row in Item.objects.filter(state__in=(Item.State.QUEUED, Item.State.CLUSTERED))
               .values("queue").annotate(n=Count("id"), oldest=Min("queued_at"))}
    to_decision = defaultdict(list)
    for queue_id, created, decided in (Decision.objects.filter(stage="review", decided_at__gte=since, supersedes__isnull=True)
                                       .values_list("item__queue", "item__created_at", "decided_at")):
        to_decision[queue_id].append((decided - created).total_seconds())
    to_report = defaultdict(list)
    for queue_id, decided, finished in (ReportFile.objects.filter(report__state="finished", report__finished_at__gte=since)
                                        .values_list("item__queue", "item__decided_at", "report__finished_at")):
        if decided and finished:
            to_report[queue_id].append((finished - decided).total_seconds())
    rows = []
    for queue_id, name in queues:
        w = waiting.get(queue_id, {})
        d50, d90 = _percentiles(to_decision[queue_id])
        r50, r90 = _percentiles(to_report[queue_id])
        oldest = (now - w["oldest"]).total_seconds() if w.get("oldest") else None
        rows.append({"queue": name, "waiting": w.get("n", 0), "oldest_seconds": oldest, "oldest_text": _human(oldest),
                     "decision_p50": d50, "decision_p90": d90, "decided": len(to_decision[queue_id]),
                     "report_p50": r50, "report_p90": r90, "reported": len(to_report[queue_id]),
                     **{f"{k}_text": _human(v) for k, v in (("decision_p50", d50), ("decision_p90", d90),
                                                            ("report_p50", r50), ("report_p90", r90))}})
    return rows


def _leads_emails() -> list[str]:
    users = get_user_model().objects.filter(Q(groups__name__in=[Role.LEAD, Role.ADMIN]) | Q(is_superuser=True),
                                            is_active=True).exclude(email="").distinct()
    return sorted(users.values_list("email", flat=True))


def targets_check(*, now=None) -> list[TargetBreach]:
    """Record each new breach once (audited: target.breached) and tell the leads once by email,
    one message for the breaches found in this run (audited: target.notified). A breach whose
    email failed is told again by the next run."""
    now = now or timezone.now()
    new = []
    for found in past_target(now=now):
        try:
            with transaction.atomic():
                breach = TargetBreach.objects.create(item=found["item"], kind=found["kind"], tier=found["tier"],
                                                     target_seconds=found["target_seconds"], at=now)
                audit_record(actor=None, action="target.breached", subject=breach, item_id=found["item"].pk,
                             data={"kind": found["kind"], "tier": found["tier"], "target_seconds": found["target_seconds"],
                                   "age_seconds": round(found["age_seconds"])})
        except IntegrityError:  # recorded by an earlier run: told already
            continue
        new.append(breach)
    pending = list(TargetBreach.objects.filter(notified_at__isnull=True).select_related("item").order_by("pk")[:500])
    recipients = _leads_emails()
    if pending and recipients:
        lines = [f"- item {b.item_id}: {b.get_kind_display()} past the {b.tier} target of "
                 f"{_human(b.target_seconds)}" for b in pending]
        send_mail(subject=f"tsreview: {len(pending)} item{'s' if len(pending) != 1 else ''} past a time target",
                  message="These items are past their time target (the Team page lists all):\n\n" + "\n".join(lines) +
                          "\n\nNo media and no reviewer names are in this message.",
                  from_email=None, recipient_list=recipients)
        with transaction.atomic():
            TargetBreach.objects.filter(pk__in=[b.pk for b in pending]).update(notified_at=timezone.now())
            audit_record(actor=None, action="target.notified",
                         data={"breaches": [b.pk for b in pending], "recipients": len(recipients)})
    return new


def _human(seconds) -> str:
    """A duration as a lead reads it: "45 s", "12 min", "5 h", "3 days"; "—" for none."""
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 3 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"
