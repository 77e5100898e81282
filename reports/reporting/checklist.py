"""The checklist: what a report still needs before a lead may approve it (DESIGN §4)."""

from dataclasses import dataclass, field

from django.conf import settings

from ..cybertip.xml import SchemaUnavailable, report_document, to_bytes, validate
from ..intake.provenance import provenance_missing
from ..models import Attestation, Decision, Report, ReportFile
from ..review.decisions import file_viewed, standing_decision
from .selectors import report_files


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
    viewed = file_viewed(decision)
    problem = ""
    if report_file.item.purged_at:
        problem = "The media was destroyed: move this file out of the report."
    elif decision is None or decision.verdict != Decision.Verdict.CONFIRMED:
        problem = "No longer confirmed (overturned): move this file out of the report."
    return FileCheck(report_file, [r for r in required if r not in missing], missing, attested, viewed, problem)


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


def report_preview(report: Report, files=None) -> tuple[bytes, list[str]]:
    """The report document as it stands, and its problems (schema and documented rules).
    `files` are the report's files if the caller has read them already (the checklist has)."""
    doc = report_document(report, report_files(report) if files is None else files)
    try:
        return to_bytes(doc), validate(doc)
    except SchemaUnavailable as exc:
        return to_bytes(doc), [str(exc)]
