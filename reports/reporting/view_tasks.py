""""View these": a lead asks a reviewer to look at a draft report's files that nobody viewed
(near-duplicates decided with their cluster, or confirmed without a reveal). The reviewer
claims the task, reveals the files one by one on a strip, and confirms each file they saw; the
confirmation is a new Decision (superseding the standing one, same verdict and classification)
whose viewed_unblurred comes from their painted views, so that file's fileViewedByEsp becomes
true. A lead chooses, knowingly, between fewer looks and more actionable files."""

from django.db import transaction
from django.utils import timezone

from ..audit import audit_record
from ..errors import Refused
from ..models import Decision, Item, Report, ViewTask
from ..review.decisions import decision_create, file_viewed, standing_decision
from ..review.reveal import viewed_by
from .preservation import sending_guard
from .selectors import report_files


def unviewed_items(report: Report) -> list[Item]:
    """The report's files whose confirming reviewer did not view them, once per item."""
    seen, items = set(), []
    for f in report_files(report):
        if f.item_id not in seen and not f.item.purged_at and not file_viewed(standing_decision(f.item)):
            seen.add(f.item_id)
            items.append(f.item)
    return items


def view_task_create(*, lead, report: Report) -> ViewTask:
    """Refused unless the report is a draft with unviewed files and no open task. Audited: view_task.created."""
    if report.state != Report.State.DRAFT:
        raise Refused({"report": "Only a draft's files can be sent for a look."})
    items = [i.pk for i in unviewed_items(report)]
    if not items:
        raise Refused({"report": "Every file of this report was viewed."})
    with transaction.atomic():
        Report.objects.select_for_update(no_key=True).get(pk=report.pk)
        if ViewTask.objects.filter(report=report, done_at__isnull=True).exists():
            raise Refused({"report": "A view task for this report is already open."})
        task = ViewTask.objects.create(report=report, items=items, requested_by=lead, created_at=timezone.now())
        audit_record(actor=lead, action="view_task.created", subject=task, data={"report": report.pk, "items": items})
    return task


def view_task_open_for(user) -> ViewTask | None:
    return ViewTask.objects.filter(claimed_by=user, done_at__isnull=True).first()


def view_tasks_waiting() -> int:
    return ViewTask.objects.filter(claimed_by__isnull=True, done_at__isnull=True).count()


def view_task_claim(*, user) -> ViewTask | None:
    """The person's open task, else the oldest unclaimed one. Audited: view_task.claimed."""
    current = view_task_open_for(user)
    if current:
        return current
    with transaction.atomic():
        task = (ViewTask.objects.select_for_update(no_key=True, skip_locked=True)
                .filter(claimed_by__isnull=True, done_at__isnull=True).order_by("created_at", "pk").first())
        if task is None:
            return None
        task.claimed_by, task.claimed_at = user, timezone.now()
        task.save(update_fields=["claimed_by", "claimed_at"])
        audit_record(actor=user, action="view_task.claimed", subject=task, data={"report": task.report_id})
    return task


def view_task_complete(*, user, task: ViewTask, confirmed) -> list[Decision]:
    """Confirm the files in `confirmed` (each needs this person's painted view of it); the rest
    stay as they were (not viewed). Refused, storing nothing, for a file not in the task, not
    viewed, no longer confirmed, or a report no longer a draft. Audited: decision.recorded per
    file (with the task), view_task.done."""
    wanted = [int(i) for i in confirmed]
    strangers = sorted(set(wanted) - set(task.items))
    if strangers:
        raise Refused({"confirmed": f"Not in this task: {', '.join(map(str, strangers))}."})
    unseen = [i for i in wanted if not viewed_by(i, user)]
    if unseen:
        raise Refused({"confirmed": "Reveal a file before confirming it (not revealed: "
                                    f"{', '.join(map(str, unseen))})."})
    decisions = []
    with transaction.atomic():
        task = ViewTask.objects.select_for_update(no_key=True).get(pk=task.pk)
        if task.done_at or task.claimed_by_id != user.pk:
            raise Refused({"task": "This task is no longer yours."})
        if Report.objects.get(pk=task.report_id).state != Report.State.DRAFT:
            raise Refused({"task": "The report left the draft state; the look would not reach it."})
        now = timezone.now()
        for item in Item.objects.select_for_update(no_key=True).filter(pk__in=wanted).order_by("pk"):
            sending_guard(item)
            standing = standing_decision(item)
            if standing is None or standing.verdict != Decision.Verdict.CONFIRMED:
                raise Refused({"confirmed": f"Item {item.pk} is no longer confirmed."})
            decision = decision_create(item=item, user=user, stage=standing.stage, verdict=standing.verdict,
                                       classification=standing.classification, annotations=standing.annotations,
                                       note=f"Viewed for report {task.report_id} (view task {task.pk}).", viewed=True,
                                       supersedes=standing, started_at=task.claimed_at, now=now)
            audit_record(actor=user, action="decision.recorded", subject=decision, item_id=item.pk,
                         data={"verdict": decision.verdict, "classification": decision.classification,
                               "viewed_unblurred": True, "supersedes": standing.pk, "view_task": task.pk})
            decisions.append(decision)
        task.done_at, task.confirmed = now, sorted(wanted)
        task.save(update_fields=["done_at", "confirmed"])
        audit_record(actor=user, action="view_task.done", subject=task,
                     data={"report": task.report_id, "confirmed": task.confirmed,
                           "not_viewed": [i for i in task.items if i not in wanted]})
    return decisions
