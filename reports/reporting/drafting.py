"""Drafting: confirmed sightings grouped into draft reports, and a lead's changes to a draft
(incident fields, moving files, attesting a missing field). Views have checked the lead role;
these functions check the report's state and audit every change."""

import hashlib
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ..audit import audit_record
from ..cybertip.xml import clip
from ..errors import Refused
from ..intake.provenance import SOURCE_TEXT, dataset_text, provenance_missing, upload_event, uploader_identity
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
    for report in touched.values():
        _defaults_refresh(report)
    return list(touched.values())


def _defaults_refresh(report: Report) -> None:
    """The fields a lead has not filled in yet, from the provenance of the report's files."""
    files = list(report.files.select_related("submission"))
    if not files:
        return
    proposed = report_defaults([f.submission for f in files])
    changed = [name for name, value in proposed.items() if not getattr(report, name)]
    for name in changed:
        setattr(report, name, proposed[name])
    if changed:
        report.save(update_fields=changed)


def _when(value) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) else value


def incident_time(submissions: list[Submission]) -> tuple[datetime | None, str]:
    """The earliest known time of the incident, and how it was determined (never invented)."""
    candidates = []
    for s in submissions:
        p = s.provenance
        platform = p.get("platform") or "our service"
        upload = upload_event(p, timed=True)
        dataset = p.get("dataset") or {}
        source = f" for the dataset {dataset['name']}" + (f" (vendor {dataset['vendor']})" if dataset.get("vendor") else "") \
            if dataset.get("name") else ""
        for value, how in (
                (p.get("uploaded_at"), f"the time the file was uploaded to {platform}, as our service recorded it"),
                (upload and upload["at"], "the time of the uploader's recorded upload IP event"),
                (p.get("collected_at"), f"the time the file was collected from its source{source}, as recorded at "
                                        f"collection; the file was {SOURCE_TEXT.get(p.get('source_type'), 'found')}"),
                (s.observed_at, "the time our hash-matching scanner found the file; when it was uploaded or "
                                "collected is not known")):
            if value:
                candidates.append((_when(value), how))
                break
    if not candidates:
        return None, ""
    when, how = min(candidates, key=lambda c: c[0])
    return when, f"Earliest of the files in this report: {how}."


def report_defaults(submissions: list[Submission]) -> dict:
    when, how = incident_time(submissions)
    platforms = sorted({s.provenance.get("platform") for s in submissions if s.provenance.get("platform")})
    sources = sorted({s.provenance.get("source_type") for s in submissions})
    platform = "; ".join(platforms) or settings.TSREVIEW_COMPANY_NAME
    if set(sources) - {"user_upload", "storage_scan"}:
        platform += " (material found in " + ", ".join(s.replace("_", " ") for s in sources) + ", not user content)"
    info = [f"This report covers {len(submissions)} file(s), each confirmed by a human reviewer after a hash match."]
    info += [f"Files {SOURCE_TEXT.get(s, s)}." for s in sources]
    for dataset in sorted({tuple(sorted((s.provenance.get("dataset") or {}).items())) for s in submissions} - {()}):
        info.append(dataset_text(dict(dataset)))
    return {"incident_at": when, "incident_at_description": how, "platform": platform[:256],
            "additional_info": clip(" ".join(info))}


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


REPORT_FIELDS = ("incident_type", "incident_at", "incident_at_description", "platform", "additional_info")


def report_update(*, actor, report: Report, changes: dict) -> Report:
    """A lead edits a draft's incident fields. Audited: report.updated with old and new values."""
    if changes.get("incident_at") and changes["incident_at"] > timezone.now():
        raise Refused({"incident_at": "The incident time cannot be in the future."})
    with transaction.atomic():
        report = draft_locked(report)
        old = {name: getattr(report, name) for name in REPORT_FIELDS if name in changes}
        for name, value in changes.items():
            if name in REPORT_FIELDS:
                setattr(report, name, value)
        report.save(update_fields=list(old))
        audit_record(actor=actor, action="report.updated", subject=report,
                     data={"old": old, "new": {name: changes[name] for name in old}})
    return report


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
        _defaults_refresh(target)
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
        draft_locked(report_file.report)
        if field not in provenance_missing(report_file.submission.provenance):
            raise Refused({"field": f"{field} is not a missing required field of this file."})
        if report_file.attestations.filter(field=field).exists():
            raise Refused({"field": f"{field} is already attested."})
        attestation = Attestation.objects.create(report_file=report_file, field=field, reason=reason[:2000], attested_by=actor,
                                                 attested_by_name=actor.get_username(), at=timezone.now())
        audit_record(actor=actor, action="report.attested", subject=report_file, item_id=report_file.item_id,
                     data={"report": report_file.report_id, "field": field, "reason": attestation.reason})
    return attestation
