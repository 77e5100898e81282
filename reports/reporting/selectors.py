"""What the reporting pages and the scanner API read about reports."""

from django.db.models import Count, Prefetch

from ..models import Item, Report, ReportFile, Submission
from ..review.decisions import standing_decisions_prefetch


def unreported_sightings():
    """Sightings of confirmed items that are in no report yet."""
    return (Submission.objects.filter(item__state=Item.State.DECIDED, item__verdict=Item.Verdict.CONFIRMED,
                                      item__purged_at__isnull=True)
            .exclude(pk__in=ReportFile.objects.values("submission_id")))


def submission_report_id(submission: Submission) -> int | None:
    """For the scanner API: the NCMEC id of a finished report with this sighting, else with another
    sighting of its item by the same scanner (never a report of another scanner's sighting).
    A report to NCMEC's test service is not a report: the scanner is not told of it."""
    finished = (ReportFile.objects.filter(report__state=Report.State.FINISHED).exclude(report__cybertip_target="test")
                .order_by("report__finished_at"))
    own = finished.filter(submission=submission).values_list("report__ncmec_report_id", flat=True).first()
    return own or finished.filter(item_id=submission.item_id, submission__scanner_id=submission.scanner_id).values_list(
        "report__ncmec_report_id", flat=True).first()


def report_files(report: Report):
    """A report's files with everything the documents and the checklist read, in a constant
    number of queries (a 500-file report made 1,500 queries before)."""
    return report.files.select_related("submission", "item").prefetch_related(
        "submission__matches", "attestations",
        Prefetch("item__decisions", queryset=standing_decisions_prefetch(), to_attr="standing_decisions"))


def reports_in_state(state: str, *, limit: int = 200):
    return (Report.objects.filter(state=state).annotate(file_count=Count("files")).select_related("approved_by")
            .order_by("-created_at")[:limit])


def report_counts() -> dict[str, int]:
    return dict(Report.objects.values_list("state").annotate(n=Count("id")))


def other_drafts(report: Report, *, limit: int = 100):
    """Drafts a lead may move a file of this report to."""
    return Report.objects.filter(state=Report.State.DRAFT).exclude(pk=report.pk).order_by("pk")[:limit]


def report_calls(report: Report):
    return report.calls.select_related("report_file").order_by("id")


def report_holds(report: Report):
    return report.holds.select_related("item").order_by("item_id")


def draft_for_lead(pk) -> Report | None:
    """A move's target, by the id a lead chose; None when there is no such report."""
    return Report.objects.filter(pk=pk).first()
