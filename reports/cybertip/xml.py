"""CyberTipline documents, built with lxml in the schema's element order and validated
against NCMEC's schema (plus the rules its documentation states) before anything is sent.

DESIGN §4 maps provenance to elements. Nothing here invents a value: a field the provenance
lacks is left out, never defaulted. Documents only: what the files are and which decision
stands is read by the callers (reporting) and by the stages below.
"""

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from lxml import etree

from ..intake.provenance import SOURCE_STATEMENT, dataset_text, generation_text, upload_event
from ..models import Decision, Item, Report, ReportFile
from ..review.decisions import file_viewed, standing_decision
from .statements import current_target, incident_fields, page_urls, prior_reports, uploaders

FILE_ANNOTATIONS = {"animeDrawingVirtualHentai", "potentialMeme", "viral", "possibleSelfProduction", "physicalHarm",
                    "violenceGore", "bestiality", "liveStreaming", "infant", "generativeAi"}
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp", "video/mp4": "mp4",
              "video/quicktime": "mov", "video/webm": "webm", "video/x-matroska": "mkv"}
# Lengths NCMEC's documentation sets and the schema does not (the shared copy of its rules).
MAX_TEXT = 3000
DOCUMENTED_LIMITS = (
    ("incidentSummary/platform", 256), ("incidentSummary/escalateToHighPriority", MAX_TEXT), ("additionalInfo", MAX_TEXT),
    ("originalFileName", 2056), ("fileName", 2056), ("locationOfFile", 2083), ("personOrUserReported/screenName", 256),
)
# Our own limits where the documentation is silent: a short name for each name-value pair (the
# 64 characters NCMEC sets for a hash type) and the URL limit for every URL we send.
OWN_LIMITS = (("details/nameValuePair/name", 64), ("internetDetails/webPageIncident/url", 2083),
              ("personOrUserReported/profileUrl", 2083))
PLACEHOLDER_REPORT_ID, PLACEHOLDER_FILE_ID = 0, "pending"


class SchemaUnavailable(Exception):
    """The schema file is missing or unreadable."""


class DocumentInvalid(Exception):
    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


# --- The schema --------------------------------------------------------------------------------

def schema_path() -> Path:
    path = Path(settings.TSREVIEW_CYBERTIP_XSD)
    return path if path.is_absolute() else Path(settings.BASE_DIR) / path


@functools.lru_cache(maxsize=4)
def _schema(path: str, mtime: float) -> etree.XMLSchema:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.parse(path, parser))


def schema() -> etree.XMLSchema:
    """NCMEC's schema from the configured file, parsed again when the file changes."""
    path = schema_path()
    try:
        return _schema(str(path), path.stat().st_mtime)
    except OSError:
        raise SchemaUnavailable(f"No CyberTipline schema at {path}: run `manage.py cybertip_fetch_xsd`.") from None
    except (etree.XMLSchemaParseError, etree.XMLSyntaxError) as exc:
        raise SchemaUnavailable(f"The CyberTipline schema at {path} does not parse: {exc}") from None


def validate(doc: etree._Element) -> list[str]:
    """Schema errors, then the documented rules the schema does not enforce."""
    xsd = schema()
    errors = [] if xsd.validate(doc) else [f"line {e.line}: {e.message}" for e in xsd.error_log]
    return errors + rules_check(doc)


def document_check(doc: etree._Element) -> bytes:
    """The document as bytes, or DocumentInvalid naming every problem."""
    errors = validate(doc)
    if errors:
        raise DocumentInvalid(errors)
    return to_bytes(doc)


def to_bytes(doc: etree._Element) -> bytes:
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def rules_check(doc: etree._Element) -> list[str]:
    """NCMEC's documented rules that the schema does not express, and our own formats."""
    errors = [problem.message for problem in over_limits(doc)]
    if doc.tag == "report":
        errors += _report_rules(doc)
    elif doc.tag == "fileDetails":
        errors += _file_rules(doc)
    return errors


@dataclass
class OverLimit:
    """A value longer than NCMEC accepts: where, the limit, and the part that would be cut."""

    path: str
    limit: int
    length: int
    cut: str

    @property
    def message(self) -> str:
        tail = self.cut if len(self.cut) <= 160 else self.cut[:160] + " …"
        return (f"{self.path} is {self.length} characters; NCMEC accepts at most {self.limit}. Sending it would "
                f"need these last {self.length - self.limit} characters cut: “{tail}”. Shorten it (a lead's edit "
                "of the report, or the scanner's provenance); nothing is cut without you.")


def over_limits(doc: etree._Element) -> list[OverLimit]:
    found = []
    for path, limit in DOCUMENTED_LIMITS + OWN_LIMITS:
        for el in doc.findall(path):
            text = el.text or ""
            if len(text) > limit:
                found.append(OverLimit(path, limit, len(text), text[limit:]))
    return found


def _report_rules(doc) -> list[str]:
    errors = []
    when = parse_datetime(doc.findtext("incidentSummary/incidentDateTime") or "")
    if when and when > timezone.now():
        errors.append("incidentDateTime is in the future.")
    if not (doc.findtext("reporter/reportingPerson/email") or "").strip():
        errors.append("reporter/reportingPerson/email is required.")
    for el in doc.iterfind(".//email"):
        try:
            validate_email(el.text or "")
        except ValidationError:
            errors.append(f"{doc.getroottree().getpath(el)[1:]} is not a valid email address.")
    errors += [f"internetDetails url {url.text!r} is not a valid URL." for url in doc.iterfind("internetDetails/*/url")
               if not _is_url(url.text or "")]
    return errors


def _file_rules(doc) -> list[str]:
    errors = []
    if doc.findtext("exifViewedByEsp") == "true" and doc.findtext("fileViewedByEsp") != "true":
        errors.append("fileViewedByEsp must be true when exifViewedByEsp is true.")
    if doc.findtext("fileRelevance") == "Supplemental Reported" and (
            doc.find("industryClassification") is not None or doc.find("potentialMeme") is not None
            or doc.find("fileAnnotations/potentialMeme") is not None):
        errors.append("A Supplemental Reported file may not carry industryClassification or a potential-meme flag.")
    if doc.find("industryClassification") is not None and not settings.TSREVIEW_NCMEC_MOU_SIGNED:
        errors.append("industryClassification is only for companies that signed NCMEC's industry hash-sharing MOU.")
    location = doc.findtext("locationOfFile")
    if location is not None and not _is_url(location):
        errors.append("locationOfFile is not a valid URL.")
    errors += ["originalFileHash@hashType is longer than 64 characters." for h in doc.findall("originalFileHash")
               if len(h.get("hashType", "")) > 64]
    return errors


def _is_url(value: str) -> bool:
    parts = urlparse(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


# --- Building ----------------------------------------------------------------------------------

# Characters XML 1.0 cannot carry (intake refuses them; text stored before that check may hold
# them): each becomes a visible marker, so a document always builds.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
NOT_XML_MARKER = "\ufffd"


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return _NOT_XML.sub(NOT_XML_MARKER, str(value))


def _add(parent, tag: str, value=None, **attrs):
    """Append <tag>value</tag>; nothing at all when there is no value."""
    if value is None or value == "":
        return None
    el = etree.SubElement(parent, tag, {k: _text(v) for k, v in attrs.items()})
    el.text = _text(value)
    return el


def _time(value: str | None) -> str | None:
    """A provenance timestamp (ISO 8601 with a zone) as an xs:dateTime."""
    parsed = parse_datetime(value) if value else None
    return _text(parsed) if parsed else None


def report_document(report: Report, files: list[ReportFile]) -> etree._Element:
    """The `report` document (the body of /submit), children in the schema's order. `files`
    are the report's files as reporting.selectors.report_files reads them. The incident fields
    are derived from the files now (statements.incident_fields), with the lead's overrides."""
    files = list(files)
    fields = incident_fields(report, files)
    root = etree.Element("report")
    if report.batched:
        etree.SubElement(root, "batchedReport", reason="VIRAL_POTENTIAL_MEME")
    summary = etree.SubElement(root, "incidentSummary")
    _add(summary, "incidentType", report.incident_type)
    _add(summary, "platform", fields["platform"].value)
    _add(summary, "escalateToHighPriority", report.urgent_reason.strip())
    annotations = [name for name in Report.Annotation.values if name in report.annotations]
    if annotations:
        marks = etree.SubElement(summary, "reportAnnotations")
        for name in annotations:
            _add(marks, name, True)
    _add(summary, "incidentDateTime", fields["incident_at"].value)
    _add(summary, "incidentDateTimeDescription", fields["incident_at_description"].value)
    for third_party, urls in page_urls(files):
        web = etree.SubElement(etree.SubElement(root, "internetDetails"), "webPageIncident",
                               thirdPartyHostedContent=_text(third_party))
        for url in urls:
            _add(web, "url", url)
    _reporter(root)
    target = report.cybertip_target or current_target()["cybertip_target"]
    for uploader in uploaders(files):
        _person_reported(root, uploader, prior_reports(uploader, target=target, exclude=report.pk))
    _add(root, "additionalInfo", fields["additional_info"].value)
    return root


def _reporter(root) -> None:
    """The reporter block: the configured company contact only, never a reviewer or lead."""
    reporter = etree.SubElement(root, "reporter")
    person = etree.SubElement(reporter, "reportingPerson")
    _add(person, "firstName", settings.TSREVIEW_REPORTER_FIRST_NAME)
    _add(person, "lastName", settings.TSREVIEW_REPORTER_LAST_NAME)
    _add(person, "phone", settings.TSREVIEW_REPORTER_PHONE)
    _add(person, "email", settings.TSREVIEW_REPORTER_EMAIL)
    contact = [settings.TSREVIEW_CONTACT_FIRST_NAME, settings.TSREVIEW_CONTACT_LAST_NAME,
               settings.TSREVIEW_CONTACT_PHONE, settings.TSREVIEW_CONTACT_EMAIL]
    if any(contact):
        person = etree.SubElement(reporter, "contactPerson")
        for tag, value in zip(("firstName", "lastName", "phone", "email"), contact, strict=True):
            _add(person, tag, value)


def _ip_event(parent, event: dict) -> None:
    el = etree.SubElement(parent, "ipCaptureEvent")
    _add(el, "ipAddress", event["ip"])
    _add(el, "eventName", event.get("event"))
    _add(el, "dateTime", _time(event.get("at")))
    _add(el, "port", event.get("port"))


def _person_reported(root, uploader: dict, prior: list[int]) -> None:
    el = etree.SubElement(root, "personOrUserReported")
    if uploader.get("email"):
        _add(etree.SubElement(el, "personOrUserReportedPerson"), "email", uploader["email"])
    _add(el, "espIdentifier", uploader.get("esp_identifier"))
    _add(el, "screenName", uploader.get("screen_name"))
    _add(el, "profileUrl", uploader.get("profile_url"))
    for event in uploader["ip_events"]:
        _ip_event(el, event)
    for device in uploader["device_ids"]:
        device_el = etree.SubElement(el, "deviceId")
        _add(device_el, "idType", device["type"])
        _add(device_el, "idValue", device["value"])
    for ncmec_id in prior:
        _add(el, "priorCTReports", ncmec_id)


def upload_name(item: Item) -> str:
    return f"{item.sha256[:16]}.{EXTENSIONS.get(item.mime_type, 'bin')}"


def file_details_document(report_file: ReportFile, *, report_id=PLACEHOLDER_REPORT_ID,
                          file_id=PLACEHOLDER_FILE_ID, sightings: list[ReportFile] | None = None) -> etree._Element:
    """The `fileDetails` document (the body of /fileinfo) of one file. `sightings` are all the
    report's sightings of the same bytes, this one first (statements.sightings_by_item): the file
    is uploaded once and every sighting's context is said here, each in its own additionalInfo."""
    sightings = sightings or [report_file]
    item = report_file.item
    provenances = [s.submission.provenance for s in sightings]
    decision = standing_decision(item)
    root = etree.Element("fileDetails")
    _add(root, "reportId", report_id)
    _add(root, "fileId", file_id)
    _add(root, "fileName", upload_name(item))
    _add(root, "originalFileName", _first(provenances, "original_filename"))
    _add(root, "uploadedToEspTimestamp", _time(_first(provenances, "uploaded_at")))
    _add(root, "locationOfFile", _first(provenances, "location_url"))
    _add(root, "fileViewedByEsp", file_viewed(decision))
    public = [p["publicly_available"] for p in provenances if p.get("publicly_available") is not None]
    _add(root, "publiclyAvailable", any(public) if public else None)
    _add(root, "fileRelevance", "Reported")
    annotations = set(decision.annotations if decision else []) & FILE_ANNOTATIONS
    if any(p.get("source_type") == "model_output" for p in provenances):
        annotations.add("generativeAi")  # made by our own generative model: said, not left to a reviewer's tick
    if annotations:
        marks = etree.SubElement(root, "fileAnnotations")
        for name in sorted(annotations):
            _add(marks, name, True)
    if settings.TSREVIEW_NCMEC_MOU_SIGNED and decision and decision.classification:
        _add(root, "industryClassification", decision.classification)
    for name, value in (("MD5", item.md5), ("SHA1", item.sha1), ("SHA256", item.sha256)):
        _add(root, "originalFileHash", value, hashType=name)
    upload = next((upload_event(p) for p in provenances if upload_event(p)), None)
    if upload:
        _ip_event(root, upload)
    for n, sighting in enumerate(sightings, 1):
        _match_details(root, sighting, prefix=f"sighting {n}, " if len(sightings) > 1 else "")
    seen = seen_text(item, decision)
    if seen:
        pair = etree.SubElement(etree.SubElement(root, "details"), "nameValuePair")
        _add(pair, "name", "what the reviewer saw")
        _add(pair, "value", seen)
    for n, sighting in enumerate(sightings, 1):
        text = file_info_text(sighting, decision)
        if len(sightings) > 1:
            text = f"Sighting {n} of {len(sightings)} of this file. {text}"
        for part in _parts(text):  # the schema allows several; nothing is cut
            _add(root, "additionalInfo", part)
    return root


def _first(provenances: list[dict], key: str):
    return next((p[key] for p in provenances if p.get(key) not in (None, "")), None)


def _parts(text: str, limit: int = MAX_TEXT) -> list[str]:
    """A long text as consecutive parts of at most `limit` characters, split at spaces."""
    parts = []
    while len(text) > limit:
        cut = text.rfind(" ", 0, limit - 12)
        cut = cut if cut > 0 else limit - 12
        parts.append(text[:cut].rstrip() + " (continued)")
        text = text[cut:].lstrip()
    return parts + [text]


def _match_details(root, report_file: ReportFile, prefix: str = "") -> None:
    """The scanner's matches as name-value pairs of type HASH; each name stays short (the
    list's name, which can be long, goes in the value)."""
    matches = list(report_file.submission.matches.all())
    if not matches:
        return
    details = etree.SubElement(root, "details", type="HASH")
    for n, m in enumerate(matches, 1):
        pair = etree.SubElement(details, "nameValuePair")
        _add(pair, "name", f"{prefix}match {n}: {m.hash_type}")
        parts = [m.hash_value, f"list {m.list_name}"]
        if m.distance is not None:
            parts.append(f"distance {m.distance:g}" + (f" of threshold {m.threshold:g}" if m.threshold is not None else ""))
        parts += [f"list entry {m.list_entry_id}"] if m.list_entry_id else []
        parts += [f"list label {m.label}"] if m.label else []
        _add(pair, "value", "; ".join(parts))


def seen_text(item: Item, decision: Decision | None) -> str:
    """For moving media: which of its sampled frames the confirming reviewer looked at (and for
    a video, which segments were played), in words."""
    if not item.is_moving or decision is None or not decision.viewed_unblurred:
        return ""
    times = item.frame_times
    frames = [n for n in decision.viewed_frames if n < len(times)]
    at = ", ".join(f"{times[n]:.1f} s" for n in frames[:20]) + (", …" if len(frames) > 20 else "")
    seen = f"viewed {len(frames)} of {len(times)} sampled frames (at {at}) as still pictures" if frames else ""
    segments = decision.played_segments[:20]
    played = ", ".join(f"{_clock(seg[0])}–{_clock(seg[1])} {'with' if seg[2:] and seg[2] else 'without'} sound"
                       for seg in segments)
    played = f"played {played}" if played else ("no video segment played; no sound" if item.is_video else "")
    return "; ".join(part for part in (seen, played) if part)


def _clock(seconds: float) -> str:
    whole = int(round(seconds))
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def file_info_text(report_file: ReportFile, decision: Decision | None) -> str:
    """Where the file came from, in words: the fixed statement of its source type, the dataset
    (its vendor, where the vendor got it, who acquired it) or the model that made it. No
    reviewer's or lead's name: who attested is "a lead"."""
    submission = report_file.submission
    p = submission.provenance
    lines = [f"Source: {SOURCE_STATEMENT.get(p.get('source_type'), SOURCE_STATEMENT['other'])}"]
    if p.get("dataset"):
        lines.append(dataset_text(p["dataset"]))
    if p.get("generation"):
        lines.append(generation_text(p["generation"]))
    for key, label in (("collected_at", "Collected from its source"), ("page_url", "Web page"),
                       ("location_url", "File location"), ("original_filename", "Original file name"),
                       ("platform", "Platform")):
        if p.get(key):
            lines.append(f"{label}: {p[key]}.")
    lines.append(f"Found by our hash-matching scanner on {_text(submission.observed_at)}.")
    if decision:
        lines.append(f"Confirmed by a human reviewer on {_text(decision.decided_at)}.")
    if seen_text(report_file.item, decision):
        lines.append(f"The reviewer {seen_text(report_file.item, decision)}.")
    for a in report_file.attestations.all():
        lines.append(f"Not available: {a.field} (a lead attested: {a.reason}).")
    return " ".join(lines)


def fill_ids(details_xml: str, *, report_id: int, file_id: str) -> etree._Element:
    """An approved fileDetails with NCMEC's report and file ids filled in."""
    doc = etree.fromstring(details_xml.encode(), etree.XMLParser(resolve_entities=False, no_network=True))
    doc.find("reportId").text = str(report_id)
    doc.find("fileId").text = file_id
    return doc
