"""Reports: confirmed sightings drafted into CyberTipline reports, checked for the provenance
that makes them actionable, approved by a lead; then preservation holds and retention.

Sending an approved report is in cybertip/submit.py. Views check that the actor is a lead
(access.lead_required); these functions check the report's state and audit every change.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .audit import audit_record
from .cybertip.xml import (SOURCE_TEXT, DocumentInvalid, SchemaUnavailable, clip, dataset_text, document_check,
                           file_details_document, report_document, report_files, standing_decision, to_bytes,
                           uploader_identity, validate, viewed_by_reviewer)
from .models import Attestation, Decision, Hold, Item, Report, ReportFile, Submission
from .provenance import provenance_missing
from .storage import media_store

# Reports whose files are on their way to NCMEC: their media must stay.
SENDING = (Report.State.APPROVED, Report.State.STALLED)


class ReportInvalid(Exception):
    def __init__(self, errors: dict[str, str]):
        super().__init__(errors)
        self.errors = errors


# --- Drafting ----------------------------------------------------------------------------------

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


def unreported_sightings():
    """Sightings of confirmed items that are in no report yet."""
    return (Submission.objects.filter(item__state=Item.State.DECIDED, item__verdict=Item.Verdict.CONFIRMED,
                                      item__purged_at__isnull=True)
            .exclude(pk__in=ReportFile.objects.values("submission_id")))


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
        upload_event = next((e for e in (p.get("uploader") or {}).get("ip_events") or []
                             if e.get("event") == "Upload" and e.get("at")), None)
        dataset = p.get("dataset") or {}
        source = f" for the dataset {dataset['name']}" + (f" (vendor {dataset['vendor']})" if dataset.get("vendor") else "") \
            if dataset.get("name") else ""
        for value, how in (
                (p.get("uploaded_at"), f"the time the file was uploaded to {platform}, as our service recorded it"),
                (upload_event and upload_event["at"], "the time of the uploader's recorded upload IP event"),
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


def submission_report_id(submission: Submission) -> int | None:
    """For the scanner API: the NCMEC id of a finished report with this sighting, else with its item."""
    finished = ReportFile.objects.filter(report__state=Report.State.FINISHED).order_by("report__finished_at")
    own = finished.filter(submission=submission).values_list("report__ncmec_report_id", flat=True).first()
    return own or finished.filter(item_id=submission.item_id).values_list("report__ncmec_report_id", flat=True).first()


# --- The checklist -----------------------------------------------------------------------------

@dataclass
class FileCheck:
    report_file: ReportFile
    present: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    attested: dict[str, Attestation] = field(default_factory=dict)
    viewed: bool = False  # fileViewedByEsp: the confirming reviewer revealed this file
    problem: str = ""  # what no attestation can cure: the file is no longer confirmed, or gone

    @property
    def blocking(self) -> list[str]:
        return ([self.problem] if self.problem else []) + [m for m in self.missing if m not in self.attested]

    @property
    def rows(self) -> list[tuple[str, str, Attestation | None]]:
        """(requirement, "present" | "attested" | "missing", the attestation) for the page."""
        return [(name, "present", None) for name in self.present] + [
            (name, "attested" if name in self.attested else "missing", self.attested.get(name)) for name in self.missing]


@dataclass
class Checklist:
    report: list[tuple[str, bool, str]]  # (what, ok, how to fix)
    files: list[FileCheck]

    @property
    def blocking(self) -> bool:
        return any(not ok for _, ok, _ in self.report) or any(f.blocking for f in self.files)

    @property
    def fully_actionable(self) -> bool:
        return not any(f.missing for f in self.files)


def file_check(report_file: ReportFile) -> FileCheck:
    provenance = report_file.submission.provenance
    missing = provenance_missing(provenance)
    required = [r if isinstance(r, str) else " or ".join(r)
                for r in settings.TSREVIEW_PROVENANCE_REQUIRED.get(provenance.get("source_type"), [])]
    attested = {a.field: a for a in report_file.attestations.all() if a.field in missing}
    decision = standing_decision(report_file.item)
    viewed = viewed_by_reviewer(decision)
    problem = ""
    if report_file.item.purged_at:
        problem = "The media was destroyed: move this file out of the report."
    elif decision is None or decision.verdict != Decision.Verdict.CONFIRMED:
        problem = "No longer confirmed (overturned): move this file out of the report."
    return FileCheck(report_file, [r for r in required if r not in missing], missing, attested, viewed, problem)


def report_files_withdraw(*, actor, item: Item) -> None:
    """An item whose confirmation was overturned leaves the drafts it was in (the caller holds
    the transaction). Refused while a report with it is being sent. Audited: report.file_removed."""
    if ReportFile.objects.filter(item=item, report__state__in=SENDING).exists():
        raise ReportInvalid({"item": "A report with this item is being sent; wait until it is finished or failed."})
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


def report_checklist(report: Report) -> Checklist:
    files = [file_check(f) for f in report_files(report)]
    items = [
        ("At least one file", bool(files), "Move a file into this draft."),
        ("Reporting person's email", bool(settings.TSREVIEW_REPORTER_EMAIL.strip()), "Set TSREVIEW_REPORTER_EMAIL."),
        ("Incident date and time", report.incident_at is not None, "Enter when the incident happened."),
        ("How the incident time was determined", bool(report.incident_at_description.strip()), "Describe it."),
        ("CyberTipline connection", bool(settings.TSREVIEW_CYBERTIP_BASE_URL),
         "Set TSREVIEW_CYBERTIP_BASE_URL, _USERNAME and _PASSWORD."),
    ]
    return Checklist(items, files)


def report_preview(report: Report) -> tuple[bytes, list[str]]:
    """The report document as it stands, and its problems (schema and documented rules)."""
    doc = report_document(report)
    try:
        return to_bytes(doc), validate(doc)
    except SchemaUnavailable as exc:
        return to_bytes(doc), [str(exc)]


# --- A lead's changes to a draft ---------------------------------------------------------------

def _draft_locked(report: Report) -> Report:
    report = Report.objects.select_for_update(no_key=True).get(pk=report.pk)
    if report.state != Report.State.DRAFT:
        raise ReportInvalid({"state": f"Only a draft can change; this report is {report.get_state_display()}."})
    return report


REPORT_FIELDS = ("incident_type", "incident_at", "incident_at_description", "platform", "additional_info")


def report_update(*, actor, report: Report, changes: dict) -> Report:
    """A lead edits a draft's incident fields. Audited: report.updated with old and new values."""
    if changes.get("incident_at") and changes["incident_at"] > timezone.now():
        raise ReportInvalid({"incident_at": "The incident time cannot be in the future."})
    with transaction.atomic():
        report = _draft_locked(report)
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
        source = _draft_locked(report_file.report)
        if target is None:
            target = Report.objects.create(group_key=f"manual|{report_file.pk}", group_label="Moved by a lead", created_by=actor)
            audit_record(actor=actor, action="report.drafted", subject=target, data={"group": target.group_label})
        target = _draft_locked(target)
        if target.pk == source.pk:
            raise ReportInvalid({"target": "The file is already in this report."})
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
        raise ReportInvalid({"reason": "Say why this information is not available."})
    with transaction.atomic():
        report_file = ReportFile.objects.select_for_update(no_key=True).select_related("submission").get(pk=report_file.pk)
        _draft_locked(report_file.report)
        if field not in provenance_missing(report_file.submission.provenance):
            raise ReportInvalid({"field": f"{field} is not a missing required field of this file."})
        if report_file.attestations.filter(field=field).exists():
            raise ReportInvalid({"field": f"{field} is already attested."})
        attestation = Attestation.objects.create(report_file=report_file, field=field, reason=reason[:2000], attested_by=actor,
                                                 attested_by_name=actor.get_username(), at=timezone.now())
        audit_record(actor=actor, action="report.attested", subject=report_file, item_id=report_file.item_id,
                     data={"report": report_file.report_id, "field": field, "reason": attestation.reason})
    return attestation


def report_approve(*, actor, report: Report) -> Report:
    """A lead approves a draft for sending. Refused while anything required is missing and not
    attested, or when the documents do not validate against NCMEC's schema. The validated
    documents are kept: what is sent is what was approved. Audited: report.approved; the
    sending task is queued when the transaction commits."""
    with transaction.atomic():
        report = _draft_locked(report)
        checklist = report_checklist(report)
        if checklist.blocking:
            raise ReportInvalid({"checklist": "Complete or attest every missing item first."})
        try:
            report.report_xml = document_check(report_document(report)).decode()
            for check in checklist.files:
                check.report_file.details_xml = document_check(file_details_document(check.report_file)).decode()
            ReportFile.objects.bulk_update([c.report_file for c in checklist.files], ["details_xml"], batch_size=500)
        except (DocumentInvalid, SchemaUnavailable) as exc:
            raise ReportInvalid({"xml": "; ".join(getattr(exc, "errors", [str(exc)]))}) from None
        report.state, report.approved_by, report.approved_at = Report.State.APPROVED, actor, timezone.now()
        report.fully_actionable, report.failure, report.attempts = checklist.fully_actionable, "", 0
        report.save(update_fields=["report_xml", "state", "approved_by", "approved_at", "fully_actionable", "failure", "attempts"])
        audit_record(actor=actor, action="report.approved", subject=report,
                     data={"files": len(checklist.files), "fully_actionable": report.fully_actionable})
        transaction.on_commit(lambda: report_send_enqueue(report.pk))
    return report


def report_send_enqueue(report_id: int) -> None:
    from .tasks import report_send_task

    report_send_task.delay(report_id)


def report_retry(*, actor, report: Report) -> Report:
    """A lead sends a stalled report again. Audited: report.retried."""
    with transaction.atomic():
        report = Report.objects.select_for_update(no_key=True).get(pk=report.pk)
        if report.state != Report.State.STALLED:
            raise ReportInvalid({"state": "Only a stalled report can be retried."})
        report.state, report.failure, report.attempts = Report.State.APPROVED, "", 0
        report.save(update_fields=["state", "failure", "attempts"])
        audit_record(actor=actor, action="report.retried", subject=report, data={})
        transaction.on_commit(lambda: report_send_enqueue(report.pk))
    return report


def report_reopen(*, actor, report: Report) -> Report:
    """A failed (retracted) report goes back to being a draft, to be fixed and approved again;
    its call log stays. Audited: report.reopened with the old NCMEC id."""
    with transaction.atomic():
        report = Report.objects.select_for_update(no_key=True).get(pk=report.pk)
        if report.state != Report.State.FAILED:
            raise ReportInvalid({"state": "Only a failed report can be reopened."})
        old_id = report.ncmec_report_id
        report.state, report.ncmec_report_id, report.report_xml = Report.State.DRAFT, None, ""
        report.save(update_fields=["state", "ncmec_report_id", "report_xml"])
        report.files.update(details_xml="", ncmec_file_id="", uploaded_at=None, fileinfo_at=None)
        audit_record(actor=actor, action="report.reopened", subject=report, data={"old_ncmec_report_id": old_id})
    return report


# --- Preservation ------------------------------------------------------------------------------

def holds_place(*, report: Report) -> list[Hold]:
    """On finish: hold each reported item (its media; its submissions, decisions and views are
    never purged) for the legal period. Called inside report_finished's transaction.
    Audited: hold.placed per item."""
    until = timezone.now() + timedelta(days=settings.TSREVIEW_HOLD_DAYS)
    holds = []
    for item_id in sorted(set(report.files.values_list("item_id", flat=True))):
        hold = Hold.objects.create(item_id=item_id, report=report, until=until,
                                   reason=f"Reported to NCMEC as CyberTipline report {report.ncmec_report_id}")
        audit_record(actor=None, action="hold.placed", subject=hold, item_id=item_id,
                     data={"report": report.pk, "until": until})
        holds.append(hold)
    return holds


def hold_extend(*, actor, hold: Hold, until: datetime, reason: str) -> Hold:
    """A lead extends a hold (e.g. a law-enforcement preservation request). Audited:
    hold.extended with the old and new dates and the reason."""
    reason = reason.strip()
    with transaction.atomic():
        hold = Hold.objects.select_for_update(no_key=True).get(pk=hold.pk)
        errors = {}
        if not reason:
            errors["reason"] = "Say why the hold is extended."
        if hold.released_at:
            errors["until"] = "This hold was released."
        elif until <= hold.until:
            errors["until"] = f"Choose a date after the current end, {hold.until:%Y-%m-%d}."
        if errors:
            raise ReportInvalid(errors)
        old = hold.until
        hold.until = until
        hold.reason = f"{hold.reason}\nExtended to {until:%Y-%m-%d} by {actor.get_username()}: {reason}"
        hold.save(update_fields=["until", "reason"])
        audit_record(actor=actor, action="hold.extended", subject=hold, item_id=hold.item_id,
                     data={"old": old, "new": until, "reason": reason})
    return hold


def material_destroy(*, actor, item: Item, reason: str) -> Item:
    """Destroy an item's media on a law-enforcement request, held or not. The item, its
    decisions and the audit log stay. Refused while a report with it is being sent.
    Audited: material.destroyed (and the holds it released)."""
    reason = reason.strip()
    if not reason:
        raise ReportInvalid({"reason": "Give the law-enforcement request (agency, reference) as the reason."})
    with transaction.atomic():
        item = Item.objects.select_for_update(no_key=True).get(pk=item.pk)
        if item.purged_at:
            raise ReportInvalid({"item": "This item's media is already gone."})
        if ReportFile.objects.filter(item=item, report__state__in=SENDING).exists():
            raise ReportInvalid({"item": "A report with this item is being sent; wait until it is finished."})
        now = timezone.now()
        released = list(item.holds.filter(released_at__isnull=True).values_list("pk", flat=True))
        item.holds.filter(pk__in=released).update(released_at=now, release_reason=f"Material destroyed: {reason}")
        _media_delete(item, now)
        audit_record(actor=actor, action="material.destroyed", subject=item, item_id=item.pk,
                     data={"reason": reason, "holds_released": released})
    return item


def _media_delete(item: Item, now) -> None:
    """Called last in its transaction: if the commit fails after the files went, the next
    retention run finds the item unmarked and marks it (deleting a missing file is a no-op)."""
    item.purged_at = now
    item.save(update_fields=["purged_at"])
    store = media_store()
    for name in [item.original_blob, *item.previews.values()]:
        store.delete(name)


def purge_candidates(now: datetime):
    """Decided items whose media nobody needs: decided before the retention period, under no
    active hold, and not a confirmed item still waiting to be reported or being sent."""
    cutoff = now - timedelta(days=settings.TSREVIEW_RETENTION_DAYS)
    held = Hold.objects.filter(released_at__isnull=True, until__gt=now).values("item_id")
    unfinished = ReportFile.objects.exclude(report__state=Report.State.FINISHED).values("item_id")
    return (Item.objects.filter(state=Item.State.DECIDED, decided_at__lt=cutoff, purged_at__isnull=True)
            .exclude(pk__in=held).exclude(pk__in=unfinished)
            .exclude(Q(verdict=Item.Verdict.CONFIRMED) & Q(pk__in=unreported_sightings().values("item_id"))))


def retention_purge(*, now: datetime | None = None, limit: int = 500) -> int:
    """Purge the media of items that are neither held nor needed (beat, daily). Each item is
    re-checked under its row lock, so a hold placed meanwhile wins. Audited: material.purged."""
    now = now or timezone.now()
    purged = 0
    for item_id in list(purge_candidates(now).values_list("pk", flat=True)[:limit]):
        with transaction.atomic():
            item = Item.objects.select_for_update(no_key=True, skip_locked=True).filter(pk=item_id).first()
            if item is None or not purge_candidates(now).filter(pk=item_id).exists():
                continue
            _media_delete(item, now)
            audit_record(actor=None, action="material.purged", subject=item, item_id=item.pk,
                         data={"retention_days": settings.TSREVIEW_RETENTION_DAYS, "verdict": item.verdict})
            purged += 1
    return purged
