"""Drafting: confirmed sightings grouped into draft reports, and a lead's changes to a draft
(incident fields, moving files, attesting a missing field). Views have checked the lead role;
these functions check the report's state and audit every change."""

import hashlib
from datetime import UTC

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from ..audit import audit_record

# The incident fields are derived from the files whenever a draft is shown, checked or approved;
# these names stay importable from here for the callers that read them.
from ..cybertip.statements import NO_URL, OVERRIDABLE, incident_time, page_urls, report_defaults  # noqa: F401
from ..cybertip.xml import MAX_TEXT
from ..errors import Refused
from ..intake.provenance import provenance_missing, uploader_identity
from ..models import Attestation, Item, Report, ReportFile, Submission
from .lifecycle import draft_locked
from .preservation import sending_guard
from .selectors import unreported_sightings


def group_of(submission: Submission) -> tuple[str, str]:
    """Which draft a sighting joins: the same uploader, else the same web page, else the same
    dataset; a sighting with none of these is a report of its own."""
    p = submission.provenance
    identity = uploader_identity(p)
    dataset = p.get("dataset") or {}
    if identity:
        name, value = next(iter(identity.items()))
        kind, label = f"uploader|{p.get('platform') or ''}|{name}={value}", f"Uploader {value}"
        label += f" on {p['platform']}" if p.get("platform") else ""
    elif p.get("page_url"):
        kind, label = f"page|{p['page_url']}", f"Web page {p['page_url']}"
    elif dataset.get("name"):
        kind, label = f"dataset|{dataset.get('vendor') or ''}|{dataset['name']}", f"Dataset {dataset['name']}"
        label += f" from {dataset['vendor']}" if dataset.get("vendor") else ""
    else:
        kind, label = f"sighting|{submission.pk}", f"Sighting {submission.external_id}"
    return f"{kind.split('|')[0]}|{hashlib.sha256(kind.encode()).hexdigest()[:40]}", label[:300]


def report_draft_build(*, actor=None) -> list[Report]:
    """Put every confirmed, unreported sighting into the open draft of its group, making drafts
    as needed. Run by a lead's button and by the beat. Audited: report.drafted per new draft,
    report.file_added per sighting."""
    try:
        with transaction.atomic():
            return _draft_build(actor)
    except IntegrityError:  # a concurrent build took a sighting first; the rest next time
        return []


def _draft_build(actor) -> list[Report]:
    sightings = unreported_sightings().select_related("item").select_for_update(no_key=True, skip_locked=True, of=("self",))
    touched: dict[int, Report] = {}
    for submission in sightings.order_by("created_at", "pk"):
        key, label = group_of(submission)
        # Locked: a lead approving this draft right now makes us wait, and then start a new one.
        report = (Report.objects.select_for_update(no_key=True).filter(state=Report.State.DRAFT, group_key=key)
                  .order_by("pk").first())
        if report is None:
            report = Report.objects.create(group_key=key, group_label=label, created_by=actor)
            audit_record(actor=actor, action="report.drafted", subject=report, data={"group": label})
        ReportFile.objects.create(report=report, submission=submission, item=submission.item)
        audit_record(actor=actor, action="report.file_added", subject=report, item_id=submission.item_id,
                     data={"submission": submission.pk})
        touched[report.pk] = report
    return list(touched.values())


def report_files_withdraw(*, actor, item: Item) -> None:
    """An item whose confirmation was overturned leaves the drafts it was in (the caller holds
    the transaction). Refused while a report with it is being sent. Audited: report.file_removed."""
    sending_guard(item)
    for report_file in ReportFile.objects.filter(item=item, report__state=Report.State.DRAFT).select_related("report"):
        report = report_file.report
        if report_file.calls.exists():  # a reopened draft keeps its call log; the checklist blocks it
            continue
        audit_record(actor=actor, action="report.file_removed", subject=report, item_id=item.pk,
                     data={"report_file": report_file.pk, "submission": str(report_file.submission_id),
                           "why": "confirmation overturned"})
        report_file.attestations.all().delete()
        report_file.delete()
        _discard_if_empty(actor, report)


REPORT_FIELDS = ("incident_type", *OVERRIDABLE, "annotations", "urgent_reason", "batched")


def report_update(*, actor, report: Report, changes: dict) -> Report:
    """A lead edits a draft: the incident type, overrides of the derived incident fields (an
    empty value goes back to the derived one), and the choices for reportAnnotations,
    escalateToHighPriority and batchedReport. Audited: report.updated with old and new values."""
    if changes.get("incident_at") and changes["incident_at"] > timezone.now():
        raise Refused({"incident_at": "The incident time cannot be in the future."})
    unknown = set(changes.get("annotations") or []) - set(Report.Annotation.values)
    if unknown:
        raise Refused({"annotations": f"Not a report annotation: {', '.join(sorted(unknown))}."})
    if len((changes.get("urgent_reason") or "").strip()) > MAX_TEXT:
        raise Refused({"urgent_reason": f"NCMEC accepts at most {MAX_TEXT} characters for the escalation reason."})
    with transaction.atomic():
        report = draft_locked(report)
        if changes.get("batched") and report.files.count() < 2:
            raise Refused({"batched": "A batch (viral, potential meme) needs many sightings; this draft has one."})
        old, new = _report_changes(report, changes)
        if old:
            columns = [n for n in ("incident_type", "annotations", "urgent_reason", "batched") if n in old]
            report.save(update_fields=columns + (["overrides"] if set(old) & set(OVERRIDABLE) else []))
            audit_record(actor=actor, action="report.updated", subject=report, data={"old": old, "new": new})
    return report


def _report_changes(report: Report, changes: dict) -> tuple[dict, dict]:
    """Apply `changes` to the report in memory; returns the old and new values that differ."""
    old, new = {}, {}
    overrides = dict(report.overrides)
    for name in OVERRIDABLE:
        if name not in changes:
            continue
        value = changes[name]
        value = value.astimezone(UTC).isoformat() if hasattr(value, "isoformat") else (value or "").strip() or None
        if overrides.get(name) != value:
            old[name], new[name] = overrides.get(name), value
            if value is None:
                overrides.pop(name, None)
            else:
                overrides[name] = value
    report.overrides = overrides
    for name in ("incident_type", "annotations", "urgent_reason", "batched"):
        if name in changes:
            value = sorted(changes[name]) if name == "annotations" else changes[name]
            value = value.strip() if isinstance(value, str) else value
            if getattr(report, name) != value:
                old[name], new[name] = getattr(report, name), value
                setattr(report, name, value)
    return old, new


def report_file_move(*, actor, report_file: ReportFile, target: Report | None) -> Report:
    """Move a sighting to another draft (or a new one). Both reports must be drafts. An emptied
    draft is discarded. Audited: report.file_moved (and report.drafted, report.discarded)."""
    with transaction.atomic():
        report_file = ReportFile.objects.select_for_update(no_key=True).select_related("submission").get(pk=report_file.pk)
        source = draft_locked(report_file.report)
        if target is None:
            target = Report.objects.create(group_key=f"manual|{report_file.pk}", group_label="Moved by a lead", created_by=actor)
            audit_record(actor=actor, action="report.drafted", subject=target, data={"group": target.group_label})
        target = draft_locked(target)
        if target.pk == source.pk:
            raise Refused({"target": "The file is already in this report."})
        report_file.report = target
        report_file.save(update_fields=["report"])
        audit_record(actor=actor, action="report.file_moved", subject=report_file, item_id=report_file.item_id,
                     data={"from": source.pk, "to": target.pk})
        _discard_if_empty(actor, source)
    return target


def _discard_if_empty(actor, report: Report) -> None:
    if report.files.exists():
        return
    try:
        with transaction.atomic():
            audit_record(actor=actor, action="report.discarded", subject=report, data={"group": report.group_label})
            report.delete()
    except ProtectedError:  # a reopened report keeps its call log; it stays as an empty draft
        pass


def report_attest(*, actor, report_file: ReportFile, field: str, reason: str) -> Attestation:
    """A lead states that a required field is not available, and why. The report then counts
    as not fully actionable. Audited: report.attested."""
    reason = reason.strip()
    if not reason:
        raise Refused({"reason": "Say why this information is not available."})
    with transaction.atomic():
        report_file = ReportFile.objects.select_for_update(no_key=True).select_related("submission").get(pk=report_file.pk)
        report = draft_locked(report_file.report)
        if field == NO_URL:
            if page_urls(list(report.files.select_related("submission"))):
                raise Refused({"field": "A URL is known for this report; nothing to attest."})
        elif field not in provenance_missing(report_file.submission.provenance):
            raise Refused({"field": f"{field} is not a missing required field of this file."})
        if report_file.attestations.filter(field=field).exists():
            raise Refused({"field": f"{field} is already attested."})
        attestation = Attestation.objects.create(report_file=report_file, field=field, reason=reason[:2000], attested_by=actor,
                                                 attested_by_name=actor.get_username(), at=timezone.now())
        audit_record(actor=actor, action="report.attested", subject=report_file, item_id=report_file.item_id,
                     data={"report": report_file.report_id, "field": field, "reason": attestation.reason})
    return attestation
