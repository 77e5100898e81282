"""Acceptance (issue 14): every source type, with and without its optional fields, pushed
through the API, confirmed through the review path, approved by a lead and sent to the fake
CyberTipline; every document it received is validated against NCMEC's schema, and each
statement is checked field by field."""

import pytest
from django.test import override_settings
from lxml import etree

from reports.cybertip.statements import NO_URL
from reports.intake import previews
from reports.intake.provenance import SOURCE_PLATFORM, SOURCE_STATEMENT, dataset_text, generation_text
from reports.models import Report, Submission
from reports.reporting import drafting, lifecycle
from reports.review import decisions, queue

from .factories import look, make_metadata, push
from .test_reports import shared_schema  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db

UPLOAD = {"ip": "203.0.113.7", "event": "Upload", "at": "2026-09-02T10:00:00Z", "port": 443}
DATASET = {"name": "ds-{n}", "vendor": "Acme Data", "version": "7", "record_id": "r-{n}", "vendor_source": "public hosts",
           "acquired_by": "our data team", "acquired_at": "2026-10-01T00:00:00Z"}
GENERATION = {"model_name": "pixel-gen", "model_version": "3.1", "generated_at": "2026-11-01T09:00:00Z",
              "request_id": "req-{n}", "session_id": "sess-{n}", "user_prompt": True}


def _fill(value, n):
    return {k: v.format(n=n) if isinstance(v, str) else v for k, v in value.items()}


def provenance(source: str, full: bool, n: int) -> dict:
    """The required fields of `source` (the settings' policy), and with `full` every optional one."""
    urls = {"location_url": f"https://files.example/{n}.jpg", "page_url": f"https://pages.example/{n}"}
    person = {"esp_identifier": f"user-{n}", "ip_events": [UPLOAD]}
    minimal = {
        "user_upload": {"uploader": person},
        "storage_scan": {"uploader": {"esp_identifier": f"user-{n}"}, "uploaded_at": "2026-09-03T00:00:00Z"},
        "web_crawl": {"location_url": urls["location_url"], "collected_at": "2026-09-04T00:00:00Z", "publicly_available": True},
        "third_party_dataset": {"page_url": urls["page_url"], "collected_at": "2026-09-05T00:00:00Z",
                                "publicly_available": False, "dataset": {"name": f"ds-{n}", "vendor": "Acme Data"}},
        "ai_training_data": {"location_url": urls["location_url"], "collected_at": "2026-09-06T00:00:00Z",
                             "dataset": {"name": f"ds-{n}", "vendor": "Acme Data", "record_id": f"r-{n}"}},
        "model_output": {"generation": {"model_name": "pixel-gen", "model_version": "3.1",
                                        "generated_at": "2026-11-01T09:00:00Z", "request_id": f"req-{n}",
                                        "user_prompt": False}},
        "other": {"platform": "Example Photos archive"},
    }[source]
    if not full:
        return {"source_type": source, **minimal}
    extra = {"platform": "Example Photos", "original_filename": f"f-{n}.jpg", "publicly_available": True,
             "collected_at": "2026-09-07T00:00:00Z", **urls}
    if source in ("user_upload", "storage_scan", "model_output"):
        # For our model's output the uploader is the user who prompted it (signed in, no upload).
        events = [{**UPLOAD, "event": "Login"}] if source == "model_output" else [UPLOAD]
        extra = {**extra, "uploaded_at": "2026-09-01T00:00:00Z" if source != "model_output" else None,
                 "uploader": {**person, "ip_events": events, "screen_name": f"name-{n}", "email": f"u{n}@example.net",
                              "profile_url": f"https://photos.example/u/{n}", "device_ids": [{"type": "IDFA", "value": f"d-{n}"}]}}
    if source == "user_upload":
        extra["page_url"] = f"https://photos.example/p/{n}"  # our own host: not third-party
    if source in ("third_party_dataset", "ai_training_data"):
        extra["dataset"] = _fill(DATASET, n)
    if source == "model_output":
        extra["generation"] = _fill(GENERATION, n)
        extra.pop("collected_at")
    return {"source_type": source, **{k: v for k, v in {**minimal, **extra}.items() if v is not None}}


CASES = [(source, full) for source in ("user_upload", "storage_scan", "web_crawl", "third_party_dataset",
                                       "ai_training_data", "model_output", "other") for full in (True, False)]


def expected_time(p: dict, observed: str) -> str:
    upload = next((e["at"] for e in (p.get("uploader") or {}).get("ip_events", []) if e["event"] == "Upload"), None)
    value = (p.get("uploaded_at") or upload or (p.get("generation") or {}).get("generated_at") or p.get("collected_at")
             or observed)
    return value.replace("Z", "+00:00")


def test_every_source_type_with_and_without_its_optional_fields_goes_end_to_end(
        api, reviewer, lead, cybertip, reporter_settings, shared_schema, django_capture_on_commit_callbacks):  # noqa: F811
    reporter_settings.TSREVIEW_OWN_HOSTS = ["photos.example"]
    pushed = {}
    for n, (source, full) in enumerate(CASES, 1):
        metadata = make_metadata(f"case/{n}", provenance=provenance(source, full, n))
        response = push(api, metadata=metadata, seed=n)
        assert response.status_code == 201, (source, full, response.json())
        submission = Submission.objects.get(pk=response.json()["id"])
        item = previews.item_previews_make(item_id=submission.item_id)
        with override_settings(TSREVIEW_QA_SAMPLE_PERCENT=0):
            claim = queue.item_claim(user=reviewer)
            look(reviewer, item, claim)
            decisions.decision_record(user=reviewer, claim=claim, verdict="confirmed", classification="A1")
        pushed[submission.pk] = (source, full, submission)

    drafts = drafting.report_draft_build(actor=lead)
    assert len(drafts) == len(CASES)
    for report in drafts:
        report_file = report.files.get()
        p = report_file.submission.provenance
        if not (p.get("page_url") or p.get("location_url")):
            drafting.report_attest(actor=lead, report_file=report_file, field=NO_URL, reason="Not on the web.")
        with django_capture_on_commit_callbacks(execute=True):
            lifecycle.report_approve(actor=lead, report=report)
        report.refresh_from_db()
        assert report.state == Report.State.FINISHED, (p, report.failure)

    received = [etree.fromstring(call["body"]) for call in cybertip.calls if call["step"] in ("submit", "fileinfo")]
    assert len(received) == 2 * len(CASES)
    for doc in received:
        assert shared_schema.validate(doc), shared_schema.error_log

    for report in Report.objects.all():
        report_file = report.files.select_related("submission", "item").get()
        source, full, submission = pushed[report_file.submission_id]
        p = submission.provenance
        sent = cybertip.reports[report.ncmec_report_id]
        doc = etree.fromstring(sent.xml)
        [details] = [etree.fromstring(f["details"]) for f in sent.files.values()]
        case = f"{source} {'full' if full else 'minimal'}"
        statement = SOURCE_STATEMENT[source]
        summary = doc.find("incidentSummary")

        platform = p.get("platform") or reporter_settings.TSREVIEW_COMPANY_NAME
        assert summary.findtext("platform") == platform + (f" ({SOURCE_PLATFORM[source]})" if source in SOURCE_PLATFORM else ""), case
        assert summary.findtext("incidentDateTime") == expected_time(p, submission.observed_at.isoformat()), case
        assert statement in summary.findtext("incidentDateTimeDescription"), case
        assert statement in doc.findtext("additionalInfo"), case
        file_info = " ".join(el.text for el in details.iterfind("additionalInfo"))
        assert file_info.startswith(f"Source: {statement}"), case

        url = p.get("page_url") or p.get("location_url")
        web = doc.find("internetDetails/webPageIncident")
        if url:
            assert web.findtext("url") == url, case
            assert web.get("thirdPartyHostedContent") == ("false" if "photos.example" in url else "true"), case
        else:
            assert web is None and "No URL is known for this report: Not on the web." in doc.findtext("additionalInfo"), case

        person = doc.find("personOrUserReported")
        assert (person is not None) == bool(p.get("uploader")), case
        if person is not None:
            assert person.findtext("espIdentifier") == p["uploader"]["esp_identifier"], case
            assert person.findtext("screenName") == p["uploader"].get("screen_name"), case

        assert details.findtext("fileViewedByEsp") == "true", case
        assert (details.findtext("fileAnnotations/generativeAi") == "true") == (source == "model_output"), case
        assert details.findtext("locationOfFile") == p.get("location_url"), case
        assert details.findtext("originalFileName") == p.get("original_filename"), case
        public = p.get("publicly_available")
        assert details.findtext("publiclyAvailable") == (None if public is None else str(public).lower()), case
        assert [h.text for h in details.iterfind("originalFileHash")] == [report_file.item.md5, report_file.item.sha1,
                                                                          report_file.item.sha256], case
        if p.get("dataset"):
            text = dataset_text(p["dataset"])
            assert text in file_info and text in doc.findtext("additionalInfo"), case
            assert ("acquired by our data team" in text) is full, case
        if p.get("generation"):
            text = generation_text(p["generation"])
            assert text in file_info and text in doc.findtext("additionalInfo"), case
            assert ("a user's prompt was involved" if full else "no user prompt was involved") in text, case
        assert "such as" not in sent.xml.decode() + file_info, case
        assert report.cybertip_target == "other" and report.cybertip_base_url == reporter_settings.TSREVIEW_CYBERTIP_BASE_URL
