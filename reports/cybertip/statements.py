"""What a report says, derived from the current facts every time it is shown, checked or
approved: the incident fields from the provenance of the report's files (never frozen at the
first draft), a lead's edits kept apart as explicit overrides, the web pages, the sightings of
the same bytes, the earlier reports about the same uploader, and where the report goes.

DESIGN §4: nothing is invented; a fact the provenance lacks is said to be unknown, never guessed.
"""

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlparse

from django.conf import settings
from django.db.models import Q
from django.utils.dateparse import parse_datetime

from ..intake.provenance import SOURCE_PLATFORM, SOURCE_STATEMENT, dataset_text, generation_text, upload_event, uploader_identity
from ..models import Report, ReportFile, Submission

# The incident fields a lead may override; the rest of the report follows from the files.
OVERRIDABLE = ("incident_at", "incident_at_description", "platform", "additional_info")
# The attestation a lead gives when no URL at all is known for a report (no internetDetails).
NO_URL = "a URL for internetDetails"


LABELS = {"incident_at": "Incident date and time (incidentDateTime)",
          "incident_at_description": "How the time was determined (incidentDateTimeDescription)",
          "platform": "Platform (platform)", "additional_info": "Additional information (additionalInfo)"}


@dataclass
class Stated:
    """One incident field: what the files say, and the lead's override if there is one."""

    name: str
    derived: object
    override: object = None

    @property
    def label(self) -> str:
        return LABELS[self.name]

    @property
    def overridden(self) -> bool:
        return self.override is not None

    @property
    def value(self):
        return self.override if self.overridden else self.derived


def _when(value) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) else value


def _company() -> str:
    return settings.TSREVIEW_COMPANY_NAME or "the reporting company"


def _dataset_words(dataset: dict) -> str:
    if not dataset.get("name"):
        return ""
    return f" the dataset {dataset['name']}" + (f" (vendor {dataset['vendor']})" if dataset.get("vendor") else "")


def file_time(submission: Submission) -> tuple[datetime, str]:
    """When this sighting's incident happened, by the best fact known, and how that was found."""
    p = submission.provenance
    upload = upload_event(p, timed=True)
    generation, dataset = p.get("generation") or {}, p.get("dataset") or {}
    in_dataset = f" for{_dataset_words(dataset)}" if dataset.get("name") else ""
    unknown = {"model_output": "when it was generated is not known",
               "user_upload": "when it was uploaded is not known", "storage_scan": "when it was uploaded is not known",
               }.get(p.get("source_type"), "when it was collected from its source is not known")
    for value, how in (
            (p.get("uploaded_at"), f"the time the file was uploaded to {p.get('platform') or _company()}, as our "
                                   "service recorded it"),
            (upload and upload["at"], "the time of the uploader's recorded upload IP event"),
            (generation.get("generated_at"), "the time our own generative AI model produced the file"),
            (p.get("collected_at"), f"the time the file was collected from its source{in_dataset}, as recorded at "
                                    "collection"),
            (submission.observed_at, f"the time our hash-matching scanner found the file"
                                     f"{' in' + _dataset_words(dataset) if dataset.get('name') else ''}; {unknown}")):
        if value:
            return _when(value), how
    raise ValueError("a submission always has observed_at")


def _sources(submissions: list[Submission]) -> list[str]:
    return sorted({s.provenance.get("source_type") or "other" for s in submissions})


def statements_of(submissions: list[Submission]) -> str:
    """The fixed sentence of each source type in these sightings, word for word."""
    return " ".join(SOURCE_STATEMENT.get(s, SOURCE_STATEMENT["other"]) for s in _sources(submissions))


def incident_time(submissions: list[Submission]) -> tuple[datetime | None, str]:
    """The earliest known time of the incident, and how it was determined, with what the files
    are (AI training data, our model's output...) said plainly."""
    if not submissions:
        return None, ""
    when, how = min((file_time(s) for s in submissions), key=lambda c: c[0])
    count = len({s.item_id for s in submissions})
    return when, f"Earliest of the {count} file(s) in this report: {how}. {statements_of(submissions)}"


def report_defaults(submissions: list[Submission], *, no_url_reasons=()) -> dict:
    """The incident fields as the sightings' provenance states them (no lead's edits)."""
    when, how = incident_time(submissions)
    platforms = sorted({s.provenance.get("platform") for s in submissions if s.provenance.get("platform")})
    platform = "; ".join(platforms) or _company()
    notes = [SOURCE_PLATFORM[s] for s in _sources(submissions) if s in SOURCE_PLATFORM]
    if notes:
        platform += f" ({'; '.join(notes)})"
    items = len({s.item_id for s in submissions})
    info = [f"This report covers {items} file(s)" + (f" seen {len(submissions)} times" if len(submissions) > items else "")
            + ", each confirmed by a human reviewer after a hash match."]
    for source in _sources(submissions):
        count = len({s.item_id for s in submissions if (s.provenance.get("source_type") or "other") == source})
        info.append(f"{count} file(s): {SOURCE_STATEMENT.get(source, SOURCE_STATEMENT['other'])}")
    for key, text in (("dataset", dataset_text), ("generation", generation_text)):
        seen = []
        for s in submissions:
            value = s.provenance.get(key) or {}
            if value and value not in seen:
                seen.append(value)
                info.append(text(value))
    info += [f"No URL is known for this report: {reason}" for reason in no_url_reasons]
    return {"incident_at": when, "incident_at_description": how if when else "", "platform": platform,
            "additional_info": " ".join(info)}


def incident_fields(report: Report, files: list[ReportFile]) -> dict[str, Stated]:
    """The report's incident fields now: derived from its files, with the lead's overrides."""
    derived = report_defaults([f.submission for f in files], no_url_reasons=no_url_reasons(files))
    fields = {}
    for name in OVERRIDABLE:
        override = report.overrides.get(name)
        if name == "incident_at" and override:
            override = _when(override)
        fields[name] = Stated(name, derived[name], override if override not in (None, "") else None)
    return fields


def statements_missing(fields: dict[str, Stated], files: list[ReportFile]) -> list[str]:
    """The fixed statements of the report's source types that a lead's override left out: a
    report about material from a pipeline says so in platform, incidentDateTimeDescription and
    additionalInfo (DESIGN §4), whoever wrote the text."""
    sources = _sources([f.submission for f in files])
    wanted = {"platform": [SOURCE_PLATFORM[s] for s in sources if s in SOURCE_PLATFORM],
              "incident_at_description": [SOURCE_STATEMENT[s] for s in sources if s in SOURCE_PLATFORM],
              "additional_info": [SOURCE_STATEMENT[s] for s in sources if s in SOURCE_PLATFORM]}
    return [f"{fields[name].label}: keep “{text}”" for name, texts in wanted.items() if fields[name].overridden
            for text in texts if text not in (fields[name].override or "")]


# --- Web pages -----------------------------------------------------------------------------------

def page_urls(files: list[ReportFile]) -> list[tuple[bool, list[str]]]:
    """The web pages of the sightings, split by whether the host is someone else's. A sighting
    with only a file URL gives that URL (NCMEC asks for an internetDetails in every report)."""
    own = {h.lower() for h in settings.TSREVIEW_OWN_HOSTS}
    groups: dict[bool, list[str]] = {}
    for f in files:
        p = f.submission.provenance
        url = p.get("page_url") or p.get("location_url")
        if url:
            third_party = (urlparse(url).hostname or "").lower() not in own
            if url not in groups.setdefault(third_party, []):
                groups[third_party].append(url)
    return sorted(groups.items(), reverse=True)


def no_url_reasons(files: list[ReportFile]) -> list[str]:
    """A lead's attested reasons why no URL is known (only read when none is)."""
    if page_urls(files):
        return []
    return [a.reason for f in files for a in f.attestations.all() if a.field == NO_URL]


# --- Same bytes once ----------------------------------------------------------------------------

def sightings_by_item(files: list[ReportFile]) -> dict[int, list[ReportFile]]:
    """The report's sightings grouped by item, in file order. The first of each group carries
    the upload and the fileDetails; the others are said in it (the same bytes go once)."""
    groups: dict[int, list[ReportFile]] = {}
    for f in sorted(files, key=lambda f: f.pk):
        groups.setdefault(f.item_id, []).append(f)
    return groups


# --- Earlier reports about the same uploader -----------------------------------------------------

def prior_reports(uploader: dict, *, target: str, exclude: int | None) -> list[int]:
    """NCMEC ids of earlier finished reports (at the same target) naming the same uploader on
    the same platform: any one identifier in common is the same person."""
    identity = {k: uploader[k] for k in ("esp_identifier", "screen_name", "email", "profile_url") if uploader.get(k)}
    if not identity:
        return []
    same = Q()
    for key, value in identity.items():
        same |= Q(**{f"submission__provenance__uploader__{key}": value})
    platform = uploader.get("platform")
    on_platform = Q(submission__provenance__platform=platform) if platform else (
        Q(submission__provenance__platform__isnull=True) | Q(submission__provenance__platform=None))
    ids = (ReportFile.objects.filter(same, on_platform, report__state=Report.State.FINISHED, report__cybertip_target=target,
                                     report__ncmec_report_id__isnull=False)
           .exclude(report_id=exclude).values_list("report__ncmec_report_id", flat=True).distinct())
    return sorted(set(ids))


def uploaders(files: list[ReportFile]) -> list[dict]:
    """One entry per person: sightings whose uploaders share an identifier on the same platform
    (and contradict in none) are one person, so a person is never named twice after moves."""
    found: list[dict] = []
    for f in sorted(files, key=lambda f: f.pk):
        p = f.submission.provenance
        identity = uploader_identity(p)
        if identity:
            uploader = p.get("uploader") or {}
            found.append({"platform": p.get("platform"), **identity, "ip_events": list(uploader.get("ip_events") or []),
                          "device_ids": list(uploader.get("device_ids") or [])})
    merged = True
    while merged:  # until no two entries are the same person (a shared identifier joins them)
        merged = False
        for a in range(len(found)):
            for b in range(a + 1, len(found)):
                if _same_person(found[a], found[b]):
                    _merge(found[a], found.pop(b))
                    merged = True
                    break
            if merged:
                break
    return found


IDENTIFIERS = ("esp_identifier", "screen_name", "email", "profile_url")


def _same_person(a: dict, b: dict) -> bool:
    if a["platform"] != b["platform"]:
        return False
    shared = [k for k in IDENTIFIERS if a.get(k) and a.get(k) == b.get(k)]
    conflict = [k for k in IDENTIFIERS if a.get(k) and b.get(k) and a[k] != b[k]]
    return bool(shared) and not conflict


def _merge(into: dict, other: dict) -> None:
    for key in IDENTIFIERS:
        into[key] = into.get(key) or other.get(key)
    for key in ("ip_events", "device_ids"):
        into[key] += [e for e in other[key] if e not in into[key]]


# --- Where it goes ------------------------------------------------------------------------------

def current_target() -> dict:
    """Where a report approved now would go: test or production (or another base URL, such as
    the demo's fake), the base URL, and which credentials (setting and user name, no password)."""
    base = settings.TSREVIEW_CYBERTIP_BASE_URL.rstrip("/")
    known = {url.rstrip("/"): name for name, url in settings.CYBERTIP_BASE_URLS.items()}
    target = known.get(base) or settings.TSREVIEW_CYBERTIP_TARGET or "other"
    source = settings.TSREVIEW_CYBERTIP_CREDENTIALS_SETTING
    user = settings.TSREVIEW_CYBERTIP_USERNAME
    credentials = f"user {user} from {source}" if user else "none configured"
    return {"cybertip_target": target, "cybertip_base_url": base, "cybertip_credentials": credentials}
