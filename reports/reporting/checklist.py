"""The checklist: what a report still needs before a lead may approve it (DESIGN §4)."""

from dataclasses import dataclass, field

from django.conf import settings

from ..cybertip.statements import incident_fields, no_url_reasons, page_urls, sightings_by_item, statements_missing
from ..cybertip.xml import SchemaUnavailable, file_details_document, report_document, to_bytes, validate
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
    fields: dict = field(default_factory=dict)  # the incident fields now: statements.Stated by name
    no_url: bool = False  # no URL is known, so there can be no internetDetails

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
    """What the report needs, from the current facts: the files' provenance as it is now."""
    files = [file_check(f) for f in report_files(report)]
    report_files_now = [check.report_file for check in files]
    fields = incident_fields(report, report_files_now)
    no_url = bool(files) and not page_urls(report_files_now)
    items = [
        ("At least one file", bool(files), "Move a file into this draft."),
        ("Reporting person's email", bool(settings.TSREVIEW_REPORTER_EMAIL.strip()), "Set TSREVIEW_REPORTER_EMAIL."),
        ("Incident date and time", fields["incident_at"].value is not None, "Enter when the incident happened."),
        ("How the incident time was determined", bool((fields["incident_at_description"].value or "").strip()),
         "Describe it."),
        ("A URL for internetDetails (where it happened online)", not no_url or bool(no_url_reasons(report_files_now)),
         "No file has a page or file URL: ask the scanner for one, or attest why none is known."),
        ("Where the material came from is stated in every place NCMEC reads",
         not statements_missing(fields, report_files_now),
         "Your override leaves out the fixed statement: " + "; ".join(statements_missing(fields, report_files_now))
         + " (or empty the box to use the derived text)."),
        ("CyberTipline connection", bool(settings.TSREVIEW_CYBERTIP_BASE_URL),
         "Set TSREVIEW_CYBERTIP_BASE_URL, _USERNAME and _PASSWORD."),
    ]
    if report.batched:
        items.append(("A batch has many sightings", len(files) > 1, "Untick the batch, or move more sightings in."))
    return Checklist(items, files, fields, no_url)


def report_preview(report: Report, files=None) -> tuple[bytes, list[str]]:
    """The report document as it stands, and its problems (schema and documented rules).
    `files` are the report's files if the caller has read them already (the checklist has)."""
    doc = report_document(report, report_files(report) if files is None else files)
    try:
        return to_bytes(doc), validate(doc)
    except SchemaUnavailable as exc:
        return to_bytes(doc), [str(exc)]


def files_preview(files: list[ReportFile]) -> list[tuple[ReportFile, str, list[str], ReportFile | None]]:
    """Each file's fileDetails as it stands and its problems; a second sighting of the same
    bytes has no document of its own (None) and names the file that carries it."""
    rows = []
    for group in sightings_by_item(files).values():
        doc = file_details_document(group[0], sightings=group)
        try:
            problems = validate(doc)
        except SchemaUnavailable as exc:
            problems = [str(exc)]
        rows.append((group[0], to_bytes(doc).decode(), problems, None))
        rows += [(other, "", [], group[0]) for other in group[1:]]
    return rows


