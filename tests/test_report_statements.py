"""Issue 14: reports that stay true as facts change, and what else NCMEC's schema offers.

Derived incident fields and a lead's overrides, fileViewedByEsp after a 0.0 s and a painted
reveal, internetDetails, NCMEC's length limits, the lead's choices (annotations, urgent,
batch), priorCTReports, the same bytes once, the target per report, who is named, and the
window between /submit and saving NCMEC's report id."""

import re

import pytest
from django.db import IntegrityError, transaction
from django.test import override_settings
from lxml import etree

from reports.cybertip import submit
from reports.cybertip.statements import NO_URL
from reports.intake import previews
from reports.intake.provenance import SOURCE_STATEMENT, dataset_text
from reports.models import ApiCall, AuditEvent, Report, ReportFile, Submission
from reports.reporting import drafting, lifecycle
from reports.reporting.checklist import report_checklist
from reports.review import decisions, queue

from .factories import look, make_metadata, push
from .test_reports import shared_schema  # noqa: F401 - the fixture

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reporter_settings")]


def confirm_pushed(api, reviewer, metadata, *, seed, seconds=1.0, painted=True) -> Submission:
    """Push through the API, make previews, and confirm through the real review path."""
    response = push(api, metadata=metadata, seed=seed)
    assert response.status_code == 201, response.json()
    submission = Submission.objects.get(pk=response.json()["id"])
    item = previews.item_previews_make(item_id=submission.item_id)
    with override_settings(TSREVIEW_QA_SAMPLE_PERCENT=0, TSREVIEW_REQUIRE_VIEW_TO_CONFIRM=painted):
        claim = queue.item_claim(user=reviewer)
        assert claim.item_id == item.pk
        look(reviewer, item, claim, seconds=seconds, painted=painted)
        decisions.decision_record(user=reviewer, claim=claim, verdict="confirmed", classification="A1")
    return submission


def training_metadata(external_id, *, page=None, **provenance):
    metadata = make_metadata(external_id)
    metadata["provenance"] = {
        "source_type": "ai_training_data", "platform": "Example AI",
        "dataset": {"name": "captions-v2", "vendor": "Acme Data", "version": "2026-08", "record_id": f"rec/{external_id}",
                    "vendor_source": "a crawl of public image hosts", "acquired_by": "Example AI data team",
                    "acquired_at": "2026-10-01T00:00:00Z"},
        "location_url": f"https://img.example/{external_id}.jpg", "collected_at": "2026-09-14T03:12:00Z",
        "publicly_available": True, **provenance}
    if page:
        metadata["provenance"]["page_url"] = page
    return metadata


def send(lead, report, capture):
    with capture(execute=True):
        lifecycle.report_approve(actor=lead, report=report)
    report.refresh_from_db()
    return report


def approved_doc(report) -> etree._Element:
    return etree.fromstring(Report.objects.get(pk=report.pk).report_xml.encode())


def only_draft() -> Report:
    return Report.objects.get(state=Report.State.DRAFT)


# --- 1. Derived, not frozen -----------------------------------------------------------------------

def test_patched_provenance_and_moved_files_show_in_the_approved_xml(
        api, lena, reviewer, lead, cybertip, django_capture_on_commit_callbacks):
    late = training_metadata("t/1", page="https://gallery.example/7", collected_at=None)
    submission = confirm_pushed(api, reviewer, late, seed=1)
    drafting.report_draft_build(actor=lead)
    report = only_draft()
    before = report_checklist(report)
    assert before.files[0].blocking == ["collected_at"]
    assert "when it was collected from its source is not known" in before.fields["incident_at_description"].value
    assert SOURCE_STATEMENT["ai_training_data"] in before.fields["incident_at_description"].value

    response = api.patch(f"/api/v1/submissions/{submission.pk}/provenance", {"collected_at": "2026-09-10T08:00:00Z"},
                         format="json")
    assert response.status_code == 200 and response.json()["provenance_missing"] == []
    after = report_checklist(report)
    assert after.files[0].blocking == []
    assert after.fields["incident_at"].value.isoformat() == "2026-09-10T08:00:00+00:00"
    assert "collected from its source for the dataset captions-v2" in after.fields["incident_at_description"].value

    # A second file joins (moved in from its own draft): the count and the earliest time follow.
    confirm_pushed(api, reviewer, training_metadata("t/2", page="https://other.example/1",
                                                    collected_at="2026-08-01T00:00:00Z"), seed=2)
    [other] = drafting.report_draft_build(actor=lead)
    moving = other.files.get()
    assert lena.post(f"/reports/files/{moving.pk}/move/", {"target": str(report.pk)}).status_code == 302
    fields = report_checklist(report).fields
    assert fields["additional_info"].value.startswith("This report covers 2 file(s)")
    assert fields["incident_at"].value.isoformat() == "2026-08-01T00:00:00+00:00"

    # ... and leaves again: back to one file and the first file's time.
    assert lena.post(f"/reports/files/{moving.pk}/move/", {"target": "new"}).status_code == 302
    send(lead, report, django_capture_on_commit_callbacks)
    assert report.state == Report.State.FINISHED
    doc = approved_doc(report)
    assert doc.findtext("incidentSummary/incidentDateTime") == "2026-09-10T08:00:00+00:00"
    assert doc.findtext("additionalInfo").startswith("This report covers 1 file(s)")
    assert [u.text for u in doc.iterfind("internetDetails/webPageIncident/url")] == ["https://gallery.example/7"]
    assert report.incident_at.isoformat() == "2026-09-10T08:00:00+00:00"  # the approved snapshot
    [sent] = cybertip.finished_reports()
    assert b"2026-09-10T08:00:00+00:00" in sent.xml and b"covers 1 file(s)" in sent.xml


def test_a_leads_override_is_kept_and_shown_as_such_while_the_derived_text_follows_the_files(
        api, lena, reviewer, lead, cybertip):
    confirm_pushed(api, reviewer, training_metadata("t/1", page="https://gallery.example/7"), seed=1)
    drafting.report_draft_build(actor=lead)
    report = only_draft()
    response = lena.post(f"/reports/{report.pk}/edit/", {
        "incident_type": Report.IncidentType.CHILD_PORNOGRAPHY, "platform": "Example AI training pipeline"})
    assert response.status_code == 302
    report.refresh_from_db()
    assert report.overrides == {"platform": "Example AI training pipeline"}
    event = AuditEvent.objects.get(action="report.updated")
    assert event.data == {"old": {"platform": None}, "new": {"platform": "Example AI training pipeline"}}
    page = lena.get(f"/reports/{report.pk}/").content.decode()
    assert "overridden by a lead:</strong> Example AI training pipeline" in page
    assert "derived from the files: Example AI (AI training data, not user content)" in page
    assert "&lt;platform&gt;Example AI training pipeline&lt;/platform&gt;" in page
    # An override may not drop the fixed statement of where the material came from.
    assert "✗ Where the material came from is stated in every place NCMEC reads" in page
    assert "Platform (platform): keep “AI training data, not user content”" in page
    refused = lena.post(f"/reports/{report.pk}/approve/", follow=True).content.decode()
    assert "Complete or attest every missing item first" in refused and not ApiCall.objects.exists()

    # An empty box goes back to the derived text.
    lena.post(f"/reports/{report.pk}/edit/", {"incident_type": Report.IncidentType.CHILD_PORNOGRAPHY, "platform": ""})
    report.refresh_from_db()
    assert report.overrides == {}
    checklist = report_checklist(report)
    assert checklist.fields["platform"].value == "Example AI (AI training data, not user content)"
    assert not checklist.blocking


def test_file_viewed_by_esp_in_the_sent_report_is_false_after_a_0_s_reveal_and_true_after_a_painted_view(
        api, reviewer, lead, cybertip, django_capture_on_commit_callbacks):
    for seed, seconds in ((1, 0.0), (2, 1.0)):
        submission = push(api, metadata=training_metadata(f"t/{seed}", page=f"https://p.example/{seed}"), seed=seed)
        item = previews.item_previews_make(item_id=Submission.objects.get(pk=submission.json()["id"]).item_id)
        with override_settings(TSREVIEW_QA_SAMPLE_PERCENT=0, TSREVIEW_REQUIRE_VIEW_TO_CONFIRM=False):
            claim = queue.item_claim(user=reviewer)
            look(reviewer, item, claim, seconds=seconds, painted=True)  # the page says painted; 0.0 s is no view
            decisions.decision_record(user=reviewer, claim=claim, verdict="confirmed", classification="A1")
    viewed = {}
    for report in drafting.report_draft_build(actor=lead):
        send(lead, report, django_capture_on_commit_callbacks)
        [details] = [f["details"] for f in cybertip.reports[report.ncmec_report_id].files.values()]
        viewed[report.files.get().submission.external_id] = etree.fromstring(details).findtext("fileViewedByEsp")
    assert viewed == {"t/1": "false", "t/2": "true"}


# --- 2. AI pipelines said plainly -----------------------------------------------------------------

def test_model_output_is_stated_in_every_place_and_marked_generative_ai(api, reviewer, lead, cybertip, shared_schema):  # noqa: F811
    metadata = make_metadata("gen/1")
    metadata["provenance"] = {"source_type": "model_output", "platform": None,
                              "location_url": "https://cdn.example-ai.test/out/1.png",
                              "generation": {"model_name": "pixel-gen", "model_version": "3.1",
                                             "generated_at": "2026-11-01T09:00:00Z", "request_id": "req-77",
                                             "user_prompt": True}}
    confirm_pushed(api, reviewer, metadata, seed=1)
    [report] = drafting.report_draft_build(actor=lead)
    checklist = report_checklist(report)
    assert not checklist.blocking
    from reports.cybertip import xml
    files = [c.report_file for c in checklist.files]
    doc = xml.report_document(report, files)
    details = xml.file_details_document(files[0])
    assert shared_schema.validate(doc) and shared_schema.validate(details), shared_schema.error_log
    statement = SOURCE_STATEMENT["model_output"]
    assert doc.findtext("incidentSummary/platform") == "Example Photos (output of our own generative AI model, not user content)"
    assert statement in doc.findtext("incidentSummary/incidentDateTimeDescription")
    assert doc.findtext("incidentSummary/incidentDateTime") == "2026-11-01T09:00:00+00:00"
    assert statement in doc.findtext("additionalInfo") and statement in details.findtext("additionalInfo")
    generation = "Generation: model pixel-gen, version 3.1, generated at 2026-11-01T09:00:00Z, request req-77, " \
                 "a user's prompt was involved."
    assert generation in doc.findtext("additionalInfo") and generation in details.findtext("additionalInfo")
    assert details.findtext("fileAnnotations/generativeAi") == "true"
    assert "such as" not in etree.tostring(doc).decode() + etree.tostring(details).decode()


def test_training_data_without_collected_at_still_says_so_in_the_incident_time_description(api, reviewer, lead):
    confirm_pushed(api, reviewer, training_metadata("t/1", collected_at=None), seed=1)
    [report] = drafting.report_draft_build(actor=lead)
    description = report_checklist(report).fields["incident_at_description"].value
    assert "the time our hash-matching scanner found the file in the dataset captions-v2 (vendor Acme Data)" in description
    assert SOURCE_STATEMENT["ai_training_data"] in description
    info = report_checklist(report).fields["additional_info"].value
    assert "Dataset: name captions-v2, version 2026-08, vendor Acme Data, record rec/t/1, the vendor obtained it " \
           "from a crawl of public image hosts, acquired by Example AI data team on 2026-10-01T00:00:00Z." in info
    assert dataset_text({"name": "d", "acquired_at": "2026-10-01T00:00:00Z"}) == \
        "Dataset: name d, acquired (by whom was not given) on 2026-10-01T00:00:00Z."


def test_bad_generation_fields_are_refused_naming_the_field(api, assert_nothing_stored):
    for generation, field in (({"model_name": 3}, "metadata.provenance.generation.model_name"),
                              ({"prompt": True}, "metadata.provenance.generation.prompt"),
                              ({"user_prompt": "yes"}, "metadata.provenance.generation.user_prompt")):
        metadata = make_metadata("gen/bad")
        metadata["provenance"] = {"source_type": "model_output", "generation": generation}
        response = push(api, metadata=metadata)
        assert response.status_code == 400 and field in response.json()["errors"], generation
    assert_nothing_stored()


def test_the_openapi_schema_documents_the_new_source_types_and_fields(api):
    schema = api.get("/api/v1/schema", HTTP_ACCEPT="application/json").content.decode()
    for word in ("ai_training_data", "model_output", "GenerationInput", "acquired_by", "user_prompt", "docs/reports.md"):
        assert word in schema, word


# --- 3. internetDetails ---------------------------------------------------------------------------

def test_a_file_url_alone_gives_a_web_page_incident_marked_third_party(api, lena, reviewer, lead, reporter_settings):
    reporter_settings.TSREVIEW_OWN_HOSTS = ["ours.example"]
    confirm_pushed(api, reviewer, training_metadata("t/1"), seed=1)  # location_url only
    [report] = drafting.report_draft_build(actor=lead)
    from reports.cybertip import xml
    doc = xml.report_document(report, [c.report_file for c in report_checklist(report).files])
    web = doc.find("internetDetails/webPageIncident")
    assert web.get("thirdPartyHostedContent") == "true" and web.findtext("url") == "https://img.example/t/1.jpg"
    # A URL is known: there is nothing to attest.
    response = lena.post(f"/reports/files/{report.files.get().pk}/attest/", {"field": NO_URL, "reason": "x"}, follow=True)
    assert "A URL is known for this report" in response.content.decode()
    assert not AuditEvent.objects.filter(action="report.attested").exists()


def test_without_any_url_approval_waits_for_an_attestation_that_says_why(
        api, lena, reviewer, lead, cybertip, django_capture_on_commit_callbacks):
    metadata = make_metadata("u/1")
    metadata["provenance"] = {"source_type": "user_upload", "platform": "Example Photos",
                              "uploader": {"esp_identifier": "user-1", "ip_events": [
                                  {"ip": "203.0.113.7", "event": "Upload", "at": "2026-09-01T10:00:00Z"}]}}
    confirm_pushed(api, reviewer, metadata, seed=1)
    [report] = drafting.report_draft_build(actor=lead)
    page = lena.get(f"/reports/{report.pk}/").content.decode()
    assert "✗ A URL for internetDetails" in page and 'id="attest-no-url"' in page
    refused = lena.post(f"/reports/{report.pk}/approve/", follow=True).content.decode()
    assert "Complete or attest every missing item first" in refused
    assert Report.objects.get(pk=report.pk).state == Report.State.DRAFT
    first = report.files.get()
    lena.post(f"/reports/files/{first.pk}/attest/", {"field": NO_URL, "reason": "A private upload; it has no web address."})
    assert AuditEvent.objects.filter(action="report.attested", data__field=NO_URL).exists()
    send(lead, report, django_capture_on_commit_callbacks)
    doc = approved_doc(report)
    assert doc.find("internetDetails") is None
    assert "No URL is known for this report: A private upload; it has no web address." in doc.findtext("additionalInfo")


# --- 4. NCMEC's limits ------------------------------------------------------------------------------

def test_a_platform_over_ncmecs_limit_is_shown_with_what_would_be_cut_and_blocks_approval(
        api, lena, reviewer, lead, cybertip, django_capture_on_commit_callbacks):
    long_name = "Example AI " + "x" * 240  # 251 characters: the fixed note makes it 288
    confirm_pushed(api, reviewer, training_metadata("t/1", platform=long_name), seed=1)
    [report] = drafting.report_draft_build(actor=lead)
    page = lena.get(f"/reports/{report.pk}/").content.decode()
    assert "incidentSummary/platform is 288 characters; NCMEC accepts at most 256" in page
    assert "these last 32 characters cut: “training data, not user content)”" in page
    assert 'id="approve" disabled' in page
    response = lena.post(f"/reports/{report.pk}/approve/", follow=True).content.decode()
    assert "NCMEC accepts at most 256" in response and Report.objects.get(pk=report.pk).state == Report.State.DRAFT
    assert not ApiCall.objects.exists()
    # The lead resolves it with a shorter platform of their own; it is sent as written.
    lena.post(f"/reports/{report.pk}/edit/", {"incident_type": Report.IncidentType.CHILD_PORNOGRAPHY,
                                              "platform": "Example AI (AI training data, not user content)"})
    send(lead, report, django_capture_on_commit_callbacks)
    assert approved_doc(report).findtext("incidentSummary/platform") == "Example AI (AI training data, not user content)"


def test_long_file_texts_are_split_never_cut_and_match_names_stay_short(api, reviewer, lead, shared_schema):  # noqa: F811
    metadata = training_metadata("t/1")
    metadata["provenance"]["dataset"]["vendor_source"] = "v" * 1000
    metadata["provenance"]["original_filename"] = "n" * 2000
    metadata["matches"][0]["list"] = "L" * 100
    metadata["matches"].append({"hash_type": "other:" + "h" * 32, "hash_value": "ab", "list": "Own"})
    confirm_pushed(api, reviewer, metadata, seed=1)
    [report] = drafting.report_draft_build(actor=lead)
    from reports.cybertip import xml
    details = xml.file_details_document(report.files.get())
    infos = [el.text for el in details.iterfind("additionalInfo")]
    assert len(infos) == 2 and all(len(text) <= 3000 for text in infos)
    assert "v" * 1000 in "".join(infos).replace(" (continued)", "") and "n" * 2000 in " ".join(infos)
    names = [el.text for el in details.iterfind("details/nameValuePair/name")]
    assert names == ["match 1: pdq", "match 2: other:" + "h" * 32] and all(len(n) <= 64 for n in names)
    assert "list " + "L" * 100 in details.findtext("details/nameValuePair/value")
    assert xml.validate(details) == [] and shared_schema.validate(details)


# --- 5. The lead's choices and priorCTReports -----------------------------------------------------

def test_annotations_urgency_and_a_batch_chosen_on_the_draft_page_validate_and_are_sent(
        api, lena, reviewer, lead, cybertip, django_capture_on_commit_callbacks, shared_schema):  # noqa: F811
    for seed in (1, 2):
        confirm_pushed(api, reviewer, training_metadata(f"t/{seed}", page="https://meme.example/1"), seed=seed)
    [report] = drafting.report_draft_build(actor=lead)
    response = lena.post(f"/reports/{report.pk}/edit/", {
        "incident_type": Report.IncidentType.CHILD_PORNOGRAPHY, "annotations": ["sextortion", "spam"],
        "urgent": "on", "urgent_reason": "The caption names a school and a date tomorrow.", "batched": "on"})
    assert response.status_code == 302
    page = lena.get(f"/reports/{report.pk}/").content.decode()
    assert 'id="urgent"' in page and "&lt;batchedReport reason=&quot;VIRAL_POTENTIAL_MEME&quot;/&gt;" in page
    send(lead, report, django_capture_on_commit_callbacks)
    doc = approved_doc(report)
    assert shared_schema.validate(doc), shared_schema.error_log
    assert doc[0].tag == "batchedReport" and doc[0].get("reason") == "VIRAL_POTENTIAL_MEME"
    summary = doc.find("incidentSummary")
    assert [c.tag for c in summary] == ["incidentType", "platform", "escalateToHighPriority", "reportAnnotations",
                                        "incidentDateTime", "incidentDateTimeDescription"]
    assert summary.findtext("escalateToHighPriority") == "The caption names a school and a date tomorrow."
    assert [c.tag for c in summary.find("reportAnnotations")] == ["sextortion", "spam"]
    assert report.state == Report.State.FINISHED and len(cybertip.finished_reports()) == 1


def test_urgent_without_a_reason_and_a_batch_of_one_are_refused(api, lena, reviewer, lead):
    confirm_pushed(api, reviewer, training_metadata("t/1"), seed=1)
    [report] = drafting.report_draft_build(actor=lead)
    response = lena.post(f"/reports/{report.pk}/edit/", {"incident_type": Report.IncidentType.CHILD_PORNOGRAPHY, "urgent": "on"})
    assert response.status_code == 400 and "Say why the report is urgent" in response.content.decode()
    response = lena.post(f"/reports/{report.pk}/edit/", {"incident_type": Report.IncidentType.CHILD_PORNOGRAPHY, "batched": "on"})
    assert response.status_code == 400 and "needs many sightings" in response.content.decode()
    response = lena.post(f"/reports/{report.pk}/edit/", {"incident_type": Report.IncidentType.CHILD_PORNOGRAPHY,
                                                         "annotations": ["grooming"]})
    assert response.status_code == 400
    report.refresh_from_db()
    assert (report.urgent_reason, report.batched, report.annotations) == ("", False, [])
    assert not AuditEvent.objects.filter(action="report.updated").exists()


def test_urgent_reports_are_sent_ahead_of_others(broker, api, reviewer, lead, cybertip, django_capture_on_commit_callbacks):
    from tsreview.celery import app

    for seed in (1, 2):
        confirm_pushed(api, reviewer, training_metadata(f"t/{seed}", page=f"https://p.example/{seed}"), seed=seed)
    plain, urgent = sorted(drafting.report_draft_build(actor=lead), key=lambda r: r.pk)
    drafting.report_update(actor=lead, report=urgent, changes={"urgent_reason": "Immediate risk: a live stream is announced."})
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.report_approve(actor=lead, report=plain)  # approved first ...
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.report_approve(actor=lead, report=urgent)  # ... but taken first
    with app.connection_for_read() as connection:
        queue_ = connection.SimpleQueue("celery")
        first = queue_.get(timeout=5)
        second = queue_.get(timeout=5)
        taken = [message.headers["argsrepr"] for message in (first, second)]
        queue_.close()
    assert taken == [f"({urgent.pk},)", f"({plain.pk},)"]
    Report.objects.filter(pk__in=[plain.pk, urgent.pk]).update(attempts=0, approved_at="2026-01-01T00:00:00Z")
    assert lifecycle.reports_to_resume() == [urgent.pk, plain.pk]


def test_prior_reports_about_the_same_uploader_are_named(api, reviewer, lead, cybertip, django_capture_on_commit_callbacks):
    def upload(external_id, **uploader):
        metadata = make_metadata(external_id)
        metadata["provenance"] = {"source_type": "user_upload", "platform": "Example Photos",
                                  "page_url": f"https://photos.example/{external_id}",
                                  "uploader": {**uploader, "ip_events": [
                                      {"ip": "203.0.113.7", "event": "Upload", "at": "2026-09-01T10:00:00Z"}]}}
        return metadata

    confirm_pushed(api, reviewer, upload("u/1", esp_identifier="user-1"), seed=1)
    [first] = drafting.report_draft_build(actor=lead)
    send(lead, first, django_capture_on_commit_callbacks)
    assert first.state == Report.State.FINISHED
    confirm_pushed(api, reviewer, upload("u/2", esp_identifier="user-1", screen_name="Sam"), seed=2)
    confirm_pushed(api, reviewer, upload("u/3", esp_identifier="user-9"), seed=3)
    drafts = sorted(drafting.report_draft_build(actor=lead), key=lambda r: r.pk)
    for draft in drafts:
        send(lead, draft, django_capture_on_commit_callbacks)
    same, other = (approved_doc(d) for d in drafts)
    assert [el.text for el in same.iterfind("personOrUserReported/priorCTReports")] == [str(first.ncmec_report_id)]
    assert other.find("personOrUserReported/priorCTReports") is None


def test_a_person_is_named_once_when_sightings_share_an_identifier(api, lena, reviewer, lead):
    def upload(external_id, **uploader):
        metadata = make_metadata(external_id)
        metadata["provenance"] = {"source_type": "user_upload", "platform": "Example Photos",
                                  "uploader": {**uploader, "ip_events": [
                                      {"ip": "203.0.113.7", "event": "Upload", "at": "2026-09-01T10:00:00Z"}]}}
        return metadata

    confirm_pushed(api, reviewer, upload("u/1", esp_identifier="user-1"), seed=1)
    confirm_pushed(api, reviewer, upload("u/2", screen_name="Sam", email="sam@example.net"), seed=2)
    confirm_pushed(api, reviewer, upload("u/3", esp_identifier="user-1", screen_name="Sam"), seed=3)
    drafts = sorted(drafting.report_draft_build(actor=lead), key=lambda r: r.pk)
    for draft in drafts[1:]:
        for report_file in draft.files.all():
            drafting.report_file_move(actor=lead, report_file=report_file, target=drafts[0])
    from reports.cybertip import xml
    doc = xml.report_document(drafts[0], list(drafts[0].files.select_related("submission")))
    [person] = doc.findall("personOrUserReported")
    assert (person.findtext("espIdentifier"), person.findtext("screenName")) == ("user-1", "Sam")


# --- 6. Same bytes once -----------------------------------------------------------------------------

def test_two_sightings_of_one_item_upload_the_file_once_with_both_contexts(
        api, lena, reviewer, lead, cybertip, django_capture_on_commit_callbacks, shared_schema):  # noqa: F811
    confirm_pushed(api, reviewer, training_metadata("t/1", page="https://gallery.example/7"), seed=1)
    second = training_metadata("t/2", page="https://gallery.example/7")
    second["provenance"]["location_url"] = "https://mirror.example/t2.jpg"
    assert push(api, metadata=second, seed=1).json()["duplicate"] is True  # the same bytes, already confirmed
    [report] = drafting.report_draft_build(actor=lead)
    assert report.files.count() == 2 and len({f.item_id for f in report.files.all()}) == 1
    page = lena.get(f"/reports/{report.pk}/").content.decode()
    assert page.count('class="muted small same-bytes"') == 1
    send(lead, report, django_capture_on_commit_callbacks)
    assert report.state == Report.State.FINISHED
    [sent] = cybertip.finished_reports()
    [details] = [f["details"] for f in sent.files.values()]
    doc = etree.fromstring(details)
    assert shared_schema.validate(doc)
    infos = [el.text for el in doc.iterfind("additionalInfo")]
    assert infos[0].startswith("Sighting 1 of 2 of this file.") and infos[1].startswith("Sighting 2 of 2 of this file.")
    assert "https://mirror.example/t2.jpg" in infos[1] and "record rec/t/2" in infos[1]
    assert [el.text for el in doc.iterfind("details/nameValuePair/name")] == ["sighting 1, match 1: pdq",
                                                                            "sighting 2, match 1: pdq"]
    assert ApiCall.objects.filter(report=report, step="upload").count() == 1
    first, other = report.files.order_by("pk")
    assert other.ncmec_file_id == first.ncmec_file_id and other.fileinfo_at
    assert AuditEvent.objects.filter(action="report.file_same_bytes", subject_id=str(other.pk)).exists()


# --- 7. Test or production ---------------------------------------------------------------------------

def test_the_target_is_recorded_and_a_switch_after_approval_sends_nothing_to_the_new_target(
        api, lena, reviewer, lead, cybertip, reporter_settings, django_capture_on_commit_callbacks):
    from devtools.fake_cybertip import FakeCyberTipline

    reporter_settings.TSREVIEW_CYBERTIP_TARGET = "test"
    test_url = reporter_settings.TSREVIEW_CYBERTIP_BASE_URL
    confirm_pushed(api, reviewer, training_metadata("t/1", page="https://gallery.example/7"), seed=1)
    [report] = drafting.report_draft_build(actor=lead)
    assert "Would go to the <strong>test</strong> CyberTipline at " + test_url in lena.get(f"/reports/{report.pk}/").content.decode()
    with django_capture_on_commit_callbacks(execute=False):
        lifecycle.report_approve(actor=lead, report=report)
    report.refresh_from_db()
    assert (report.cybertip_target, report.cybertip_base_url) == ("test", test_url)
    assert report.cybertip_credentials == "user tsreview from TSREVIEW_CYBERTIP_USERNAME"

    production = FakeCyberTipline()
    try:
        reporter_settings.TSREVIEW_CYBERTIP_TARGET = "production"
        reporter_settings.TSREVIEW_CYBERTIP_BASE_URL = production.start()
        assert lifecycle.report_send(report_id=report.pk) == Report.State.FAILED
        report.refresh_from_db()
        assert "approved for the test CyberTipline" in report.failure and production.calls == [] and cybertip.calls == []
        page = lena.get(f"/reports/{report.pk}/").content.decode()
        assert "Approved for the <strong>test</strong> CyberTipline at " + test_url in page
        lifecycle.report_reopen(actor=lead, report=report)
        send(lead, report, django_capture_on_commit_callbacks)
        assert report.state == Report.State.FINISHED and report.cybertip_target == "production"
        assert [r.id for r in production.finished_reports()] == [report.ncmec_report_id] and cybertip.reports == {}
        submission = report.files.get().submission
        assert api.get(f"/api/v1/submissions/{submission.pk}").json()["report"] == str(report.ncmec_report_id)
        Report.objects.filter(pk=report.pk).update(cybertip_target="test")  # had it gone to the test service ...
        body = api.get(f"/api/v1/submissions/{submission.pk}").json()
        assert (body["status"], body["report"]) == ("confirmed", None)  # ... the scanner is not told it was reported
    finally:
        production.stop()


def test_ncmec_report_ids_are_unique_per_target_not_across_both(db):
    Report.objects.create(cybertip_target="test", ncmec_report_id=4242)
    Report.objects.create(cybertip_target="production", ncmec_report_id=4242)
    with pytest.raises(IntegrityError), transaction.atomic():
        Report.objects.create(cybertip_target="test", ncmec_report_id=4242)


# --- 8. Who is named ------------------------------------------------------------------------------------

def test_no_reviewer_or_lead_name_leaves_the_system(api, lena, reviewer, lead, cybertip, reporter_settings,
                                                    django_capture_on_commit_callbacks):
    metadata = training_metadata("t/1", page="https://gallery.example/7", collected_at=None)
    confirm_pushed(api, reviewer, metadata, seed=1)
    [report] = drafting.report_draft_build(actor=lead)
    report_file = report.files.get()
    lena.post(f"/reports/files/{report_file.pk}/attest/", {"field": "collected_at", "reason": "The vendor kept no date."})
    lena.post(f"/reports/{report.pk}/edit/", {"incident_type": Report.IncidentType.CHILD_PORNOGRAPHY,
                                              "annotations": ["spam"]})
    send(lead, report, django_capture_on_commit_callbacks)
    assert report.state == Report.State.FINISHED
    bodies = b"".join(call["body"] for call in cybertip.calls).decode()
    assert "<report>" in bodies and "<fileDetails>" in bodies and "a lead attested: The vendor kept no date." in bodies
    for name in (reviewer.username, lead.username, reviewer.email, lead.email):
        assert not re.search(rf"\b{re.escape(name)}\b", bodies, re.IGNORECASE), name
    sent = etree.fromstring(cybertip.finished_reports()[0].xml)
    person = sent.find("reporter/reportingPerson")
    assert [(el.tag, el.text) for el in person] == [("firstName", "Rae"), ("lastName", "Porter"),
                                                    ("email", "reports@example.org")]


# --- 9. The hidden window ----------------------------------------------------------------------------------

class WorkerCrash(BaseException):
    """The worker process dying between /submit and saving NCMEC's id."""


def test_a_crash_between_submit_and_saving_the_id_shows_may_exist_and_resumes_with_that_id(
        lena, api, reviewer, lead, cybertip, monkeypatch, django_capture_on_commit_callbacks):
    confirm_pushed(api, reviewer, training_metadata("t/1", page="https://gallery.example/7"), seed=1)
    [report] = drafting.report_draft_build(actor=lead)
    with django_capture_on_commit_callbacks(execute=False):
        lifecycle.report_approve(actor=lead, report=report)
    monkeypatch.setattr(submit, "_opened", lambda *a: (_ for _ in ()).throw(WorkerCrash()))
    with pytest.raises(WorkerCrash):
        lifecycle.report_send(report_id=report.pk)
    monkeypatch.undo()
    report.refresh_from_db()
    assert report.submit_intent_at and report.ncmec_report_id is None and report.may_exist_unfinished
    assert AuditEvent.objects.filter(action="report.submitting", subject_id=str(report.pk)).exists()
    assert "May exist at NCMEC, unfinished." in lena.get(f"/reports/{report.pk}/").content.decode()
    assert "may exist at NCMEC, unfinished" in lena.get("/reports/?state=approved").content.decode()
    [opened] = cybertip.reports.values()

    Report.objects.filter(pk=report.pk).update(send_lease_until=None)
    assert lifecycle.report_send(report_id=report.pk) == Report.State.FINISHED
    report.refresh_from_db()
    assert report.ncmec_report_id == opened.id and len(cybertip.reports) == 1  # the answer in our call log was used
    assert report.orphan_submit_at is None
    assert "May exist at NCMEC" not in lena.get(f"/reports/{report.pk}/").content.decode()


def test_a_submit_whose_answer_never_came_is_recorded_as_possibly_left_at_ncmec(
        lena, api, reviewer, lead, cybertip, django_capture_on_commit_callbacks):
    confirm_pushed(api, reviewer, training_metadata("t/1", page="https://gallery.example/7"), seed=1)
    [report] = drafting.report_draft_build(actor=lead)
    with django_capture_on_commit_callbacks(execute=False):
        lifecycle.report_approve(actor=lead, report=report)
    cybertip.fail("submit", "drop")  # NCMEC opened a report; its answer was lost
    with pytest.raises(submit.Transient):
        lifecycle.report_send(report_id=report.pk)
    report.refresh_from_db()
    assert report.may_exist_unfinished
    assert lifecycle.report_send(report_id=report.pk) == Report.State.FINISHED
    report.refresh_from_db()
    assert report.orphan_submit_at is not None and len(cybertip.reports) == 2
    assert [r.id for r in cybertip.finished_reports()] == [report.ncmec_report_id]
    assert AuditEvent.objects.filter(action="report.maybe_left_at_ncmec", subject_id=str(report.pk)).exists()
    page = lena.get(f"/reports/{report.pk}/").content.decode()
    assert 'id="orphan"' in page and "deletes within 24 hours" in page


def test_reopening_keeps_saying_an_unfinished_report_may_exist(api, reviewer, lead, cybertip,
                                                              django_capture_on_commit_callbacks, monkeypatch):
    confirm_pushed(api, reviewer, training_metadata("t/1", page="https://gallery.example/7"), seed=1)
    [report] = drafting.report_draft_build(actor=lead)
    with django_capture_on_commit_callbacks(execute=False):
        lifecycle.report_approve(actor=lead, report=report)
    cybertip.fail("submit", "drop")
    with pytest.raises(submit.Transient):
        lifecycle.report_send(report_id=report.pk)
    lifecycle.report_stall(report_id=report.pk, reason="test")
    monkeypatch.setattr(submit, "report_retract", lambda **k: ("not_opened", ""))
    lifecycle.report_abandon(actor=lead, report=Report.objects.get(pk=report.pk), reason="giving up")
    lifecycle.report_reopen(actor=lead, report=Report.objects.get(pk=report.pk))
    report.refresh_from_db()
    assert report.state == Report.State.DRAFT and report.orphan_submit_at and report.submit_intent_at is None
    assert ReportFile.objects.filter(report=report).count() == 1


def test_the_migration_keeps_a_leads_audited_edits_of_old_drafts_as_overrides_and_clears_the_rest(lead):
    import importlib

    from django.apps import apps

    from reports.audit import audit_record

    migration = importlib.import_module("reports.migrations.0008_report_statements")
    draft = Report.objects.create(platform="Example Photos (frozen)", additional_info="covers 1 file(s)",
                                  incident_at_description="frozen at the first draft", incident_at="2026-09-14T03:12:00Z")
    sent = Report.objects.create(state=Report.State.FINISHED, platform="as sent", cybertip_target="test", ncmec_report_id=7)
    with transaction.atomic():
        audit_record(actor=lead, action="report.updated", subject=draft,
                     data={"old": {"platform": ""}, "new": {"platform": "Typed by the lead"}})
    migration.drafts_to_overrides(apps, None)
    draft.refresh_from_db()
    sent.refresh_from_db()
    assert draft.overrides == {"platform": "Typed by the lead"}
    assert (draft.platform, draft.additional_info, draft.incident_at_description, draft.incident_at) == ("", "", "", None)
    assert sent.platform == "as sent"


def test_the_draft_page_reads_a_constant_number_of_queries_however_many_sightings(api, lena, reviewer, lead):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    confirm_pushed(api, reviewer, training_metadata("t/0", page="https://gallery.example/7"), seed=1)
    confirm_pushed(api, reviewer, training_metadata("t/1", page="https://gallery.example/7"), seed=2)
    counts = []
    for more in (range(2, 3), range(3, 13)):
        for n in more:  # more sightings of the same two items, on the same page: the same draft
            assert push(api, metadata=training_metadata(f"t/{n}", page="https://gallery.example/7"), seed=1 + n % 2).status_code == 201
        [report] = drafting.report_draft_build(actor=lead)
        with CaptureQueriesContext(connection) as queries:
            assert lena.get(f"/reports/{report.pk}/").status_code == 200
        counts.append(len(queries))
    assert report.files.count() == 13
    assert counts[0] == counts[1], counts
