"""Operations metrics for Prometheus (docs/operations.md): read from the database on each
scrape, so every web process answers the same, and nothing is kept per person (totals only)."""

from collections import defaultdict

from django.db.models import Count, Min, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..models import AuditEvent, Claim, Decision, Item, Report, ViewEvent
from .targets import tier_for, tiers

WAITING = (Item.State.QUEUED, Item.State.CLUSTERED, Item.State.QA, Item.State.ESCALATED)


class TsreviewCollector:
    """A prometheus_client collector: queue depth and oldest age per queue and priority tier,
    claims, decisions by verdict, reveals and unblurred seconds, reports by state, looks avoided
    by clustering, Celery task failures."""

    def collect(self):
        now = timezone.now()
        depth = GaugeMetricFamily("tsreview_queue_items", "Items waiting, by queue, priority tier and state.",
                                  labels=["queue", "tier", "state"])
        oldest = GaugeMetricFamily("tsreview_queue_oldest_age_seconds",
                                   "Age of the oldest waiting item (since it started waiting), by queue and priority tier.",
                                   labels=["queue", "tier"])
        counts, ages = defaultdict(int), {}
        rows = (Item.objects.filter(state__in=WAITING).values("queue__name", "urgent", "priority", "state")
                .annotate(n=Count("id"), oldest=Min("queued_at")))
        for row in rows:
            queue, tier = row["queue__name"] or "general", tier_for(row["priority"], row["urgent"])["tier"]
            counts[(queue, tier, row["state"])] += row["n"]
            if row["oldest"] and row["state"] in (Item.State.QUEUED, Item.State.CLUSTERED):
                ages[(queue, tier)] = min(ages.get((queue, tier), row["oldest"]), row["oldest"])
        for t in tiers():  # every tier of the general queue is always there, at 0 when empty
            counts.setdefault(("general", t["tier"], Item.State.QUEUED), 0)
        for (queue, tier, state), n in sorted(counts.items()):
            depth.add_metric([queue, tier, state], n)
        for (queue, tier), at in sorted(ages.items()):
            oldest.add_metric([queue, tier], (now - at).total_seconds())
        yield depth
        yield oldest

        claims = CounterMetricFamily("tsreview_claims", "Claims taken, by stage.", labels=["stage"])
        for row in Claim.objects.values("stage").annotate(n=Count("id")).order_by("stage"):
            claims.add_metric([row["stage"]], row["n"])
        yield claims

        decisions = CounterMetricFamily("tsreview_decisions", "Decisions recorded, by verdict.", labels=["verdict"])
        by_verdict = dict(Decision.objects.values_list("verdict").annotate(n=Count("id")))
        for verdict in Decision.Verdict.values:
            decisions.add_metric([verdict], by_verdict.get(verdict, 0))
        yield decisions

        avoided = Decision.objects.filter(cluster_decision__isnull=False, viewed_unblurred=False).count()
        yield CounterMetricFamily("tsreview_looks_avoided", "Near-duplicates decided with their cluster without a reveal.",
                                  value=avoided)

        views = ViewEvent.objects.aggregate(n=Count("id"), seconds=Sum("seconds"))
        yield CounterMetricFamily("tsreview_reveals", "Reveals of originals (all reviewers together).", value=views["n"])
        yield CounterMetricFamily("tsreview_unblurred_seconds", "Seconds originals were on screen (all reviewers together).",
                                  value=float(views["seconds"] or 0))

        reports = GaugeMetricFamily("tsreview_reports", "CyberTipline reports, by state.", labels=["state"])
        by_state = dict(Report.objects.values_list("state").annotate(n=Count("id")))
        for state in Report.State.values:
            reports.add_metric([state], by_state.get(state, 0))
        yield reports

        failures = CounterMetricFamily("tsreview_celery_task_failures", "Celery tasks that raised, by task.", labels=["task"])
        for row in (AuditEvent.objects.filter(action="task.failed").values("data__task").annotate(n=Count("id"))
                    .order_by("data__task")):
            failures.add_metric([str(row["data__task"])], row["n"])
        yield failures
