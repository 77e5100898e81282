"""CyberTipline reports before sending: drafting and grouping, moves, the missing-field
checklist, attestation, the XML against NCMEC's schema, approval and who may do it.
Sending is in test_cybertip_submit.py; holds and retention in test_retention.py."""

import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import override_settings
from lxml import etree

from reports.cybertip import xml
from reports.errors import Refused
from reports.intake import previews
from reports.models import Attestation, AuditEvent, Report, ReportFile, Submission
from reports.reporting import drafting, lifecycle, selectors
from reports.reporting.checklist import report_checklist
from reports.review import decisions, queue

from .factories import look, make_confirmed, make_item, make_metadata, push

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reporter_settings")]


@pytest.fixture
def shared_schema():
    """NCMEC's schema, loaded straight from the shared copy (not through the app's loader)."""
    path = Path(os.environ.get("TSREVIEW_CYBERTIP_XSD", "../shared/ncmec/cyber_tipline.xsd"))
    path = path if path.is_absolute() else Path(django_settings.BASE_DIR) / path
    return etree.XMLSchema(etree.parse(str(path)))


def upload_metadata(external_id, uploader="user-1001", **provenance):
    metadata = make_metadata(external_id)
    metadata["provenance"] = {
        "source_type": "user_upload", "platform": "Example Photos", "original_filename": "holiday.jpg",
        "uploaded_at": "2026-09-01T10:00:00Z",
        "uploader": {"esp_identifier": uploader, "screen_name": f"name-of-{uploader}",
                     "ip_events": [{"ip": "203.0.113.7", "event": "Upload", "at": "2026-09-01T10:00:00Z", "port": 443}],
                     "device_ids": [{"type": "IDFA", "value": "ab-12"}]},
        **provenance}
    return metadata


def dataset_metadata(external_id, page="https://host.example/gallery/7", **dataset):
    metadata = make_metadata(external_id)
    metadata["provenance"]["page_url"] = page
    metadata["provenance"]["dataset"].update(dataset)
    return metadata


def one_draft(lead) -> Report:
    drafts = drafting.report_draft_build(actor=lead)
    assert len(drafts) == 1
    drafts[0].refresh_from_db()
    return drafts[0]


def decide_not_csam(seed, reviewer):
    item = make_item(seed, priority=2000 + seed)
    with override_settings(TSREVIEW_QA_SAMPLE_PERCENT=0):
        claim = queue.item_claim(user=reviewer)
        decisions.decision_record(user=reviewer, claim=claim, verdict="not_csam", reason="benign")
    return item


# --- Drafting ----------------------------------------------------------------------------------

def test_only_confirmed_items_become_draft_reports(reviewer, lead, reporter_settings):
    confirmed = make_confirmed(1, reviewer)
    decide_not_csam(2, reviewer)
    make_item(3)  # still waiting in the queue
    report = one_draft(lead)
    assert list(report.files.values_list("item_id", flat=True)) == [confirmed.pk]
    assert report.state == Report.State.DRAFT
    assert AuditEvent.objects.filter(action="report.drafted", subject_id=str(report.pk), actor_name="lena").exists()
    assert AuditEvent.objects.filter(action="report.file_added", item_id=confirmed.pk).count() == 1


def test_sightings_of_the_same_uploader_share_a_draft(reviewer, lead, reporter_settings):
    first = make_confirmed(1, reviewer, metadata=upload_metadata("u/1"))
    second = make_confirmed(2, reviewer, metadata=upload_metadata("u/2"))
    other = make_confirmed(3, reviewer, metadata=upload_metadata("u/3", uploader="user-2002"))
    drafts = drafting.report_draft_build(actor=lead)
    groups = sorted(sorted(r.files.values_list("item_id", flat=True)) for r in drafts)
    assert groups == [sorted([first.pk, second.pk]), [other.pk]]
    assert {r.group_label for r in drafts} == {"Uploader user-1001 on Example Photos", "Uploader user-2002 on Example Photos"}


def test_sightings_from_the_same_page_share_a_draft_and_other_pages_do_not(reviewer, lead, reporter_settings):
    make_confirmed(1, reviewer, metadata=dataset_metadata("d/1"))
    make_confirmed(2, reviewer, metadata=dataset_metadata("d/2"))
    make_confirmed(3, reviewer, metadata=dataset_metadata("d/3", page="https://elsewhere.example/p/1"))
    drafts = drafting.report_draft_build(actor=lead)
    assert sorted(r.files.count() for r in drafts) == [1, 2]


def test_building_again_adds_new_sightings_to_the_open_draft_and_nothing_twice(reviewer, lead, reporter_settings):
    make_confirmed(1, reviewer, metadata=dataset_metadata("d/1"))
    report = one_draft(lead)
    assert drafting.report_draft_build(actor=lead) == []
    make_confirmed(2, reviewer, metadata=dataset_metadata("d/2"))
    assert drafting.report_draft_build(actor=lead) == [report]
    assert report.files.count() == 2 and Report.objects.count() == 1


def test_a_draft_proposes_the_incident_fields_from_the_provenance(reviewer, lead, reporter_settings):
    make_confirmed(1, reviewer, metadata=dataset_metadata("d/1"))
    report = one_draft(lead)
    fields = {name: stated.value for name, stated in report_checklist(report).fields.items()}
    assert fields["incident_at"] is not None and fields["incident_at"].tzinfo is not None
    assert "third-party dataset" in fields["additional_info"] and "Acme Data" in fields["additional_info"]
    assert "not user content" in fields["platform"]
    assert fields["incident_at_description"].startswith("Earliest of the 1 file(s) in this report")


def test_the_build_button_drafts_reports(lena, reviewer, lead):
    make_confirmed(1, reviewer)
    assert "Draft reports from 1 confirmed sighting" in lena.get("/reports/").content.decode()
    response = lena.post("/reports/build/")
    assert response.status_code == 302 and response.url == "/reports/"
    assert Report.objects.filter(state="draft").count() == 1


def test_a_lead_moves_a_file_to_another_draft_and_the_emptied_draft_goes(lena, reviewer, lead):
    make_confirmed(1, reviewer, metadata=dataset_metadata("d/1"))
    make_confirmed(2, reviewer, metadata=dataset_metadata("d/2", page="https://elsewhere.example/p/1"))
    source, target = sorted(drafting.report_draft_build(actor=lead), key=lambda r: r.pk)
    moving = source.files.get()
    response = lena.post(f"/reports/files/{moving.pk}/move/", {"target": str(target.pk)})
    assert response.status_code == 302 and response.url == f"/reports/{target.pk}/"
    assert ReportFile.objects.get(pk=moving.pk).report_id == target.pk
    assert not Report.objects.filter(pk=source.pk).exists()
    moved = AuditEvent.objects.get(action="report.file_moved")
    assert moved.data == {"from": source.pk, "to": target.pk} and moved.actor_name == "lena"
    assert AuditEvent.objects.filter(action="report.discarded", subject_id=str(source.pk)).exists()


def test_a_file_can_be_moved_into_a_new_draft(lena, reviewer, lead):
    make_confirmed(1, reviewer, metadata=dataset_metadata("d/1"))
    make_confirmed(2, reviewer, metadata=dataset_metadata("d/2"))
    report = one_draft(lead)
    moving = report.files.first()
    lena.post(f"/reports/files/{moving.pk}/move/", {"target": "new"})
    assert Report.objects.count() == 2 and report.files.count() == 1
    assert report_checklist(ReportFile.objects.get(pk=moving.pk).report).fields["incident_at"].value is not None


def test_files_cannot_move_into_a_report_that_is_not_a_draft(lena, reviewer, lead):
    make_confirmed(1, reviewer, metadata=dataset_metadata("d/1"))
    make_confirmed(2, reviewer, metadata=dataset_metadata("d/2", page="https://elsewhere.example/p/1"))
    source, target = sorted(drafting.report_draft_build(actor=lead), key=lambda r: r.pk)
    Report.objects.filter(pk=target.pk).update(state=Report.State.FINISHED)
    response = lena.post(f"/reports/files/{source.files.get().pk}/move/", {"target": str(target.pk)}, follow=True)
    assert "Only a draft can change" in response.content.decode()
    assert source.files.count() == 1 and not AuditEvent.objects.filter(action="report.file_moved").exists()


# --- The checklist and attestation -------------------------------------------------------------

def incomplete_report(reviewer, lead) -> Report:
    metadata = dataset_metadata("d/1")
    del metadata["provenance"]["dataset"]["vendor"]
    metadata["provenance"]["collected_at"] = None
    make_confirmed(1, reviewer, metadata=metadata)
    return one_draft(lead)


def test_the_report_page_shows_what_is_present_and_what_is_missing(lena, reviewer, lead):
    report = incomplete_report(reviewer, lead)
    page = lena.get(f"/reports/{report.pk}/").content.decode()
    assert "✓ location_url or page_url" in page and "✓ dataset.name" in page and "✓ publicly_available" in page
    assert "✗ collected_at — missing" in page and "✗ dataset.vendor — missing" in page
    assert 'id="approve" disabled' in page and "Complete or attest everything missing" in page
    assert "✓ Reporting person&#x27;s email" in page


def test_a_report_with_missing_provenance_cannot_be_approved(lena, reviewer, lead):
    report = incomplete_report(reviewer, lead)
    response = lena.post(f"/reports/{report.pk}/approve/", follow=True)
    assert "Complete or attest every missing item first" in response.content.decode()
    assert Report.objects.get(pk=report.pk).state == Report.State.DRAFT
    assert not AuditEvent.objects.filter(action="report.approved").exists()


def test_a_report_without_the_reporting_persons_email_cannot_be_approved(lena, reviewer, lead, reporter_settings):
    reporter_settings.TSREVIEW_REPORTER_EMAIL = ""
    make_confirmed(1, reviewer)
    report = one_draft(lead)
    assert "Set TSREVIEW_REPORTER_EMAIL" in lena.get(f"/reports/{report.pk}/").content.decode()
    with pytest.raises(Refused):
        lifecycle.report_approve(actor=lead, report=report)


def test_an_attestation_needs_a_reason(lena, reviewer, lead):
    report = incomplete_report(reviewer, lead)
    response = lena.post(f"/reports/files/{report.files.get().pk}/attest/", {"field": "collected_at", "reason": "  "}, follow=True)
    assert response.status_code == 200
    assert not Attestation.objects.exists() and not AuditEvent.objects.filter(action="report.attested").exists()


def test_only_a_missing_field_can_be_attested(lena, reviewer, lead):
    report = incomplete_report(reviewer, lead)
    response = lena.post(f"/reports/files/{report.files.get().pk}/attest/",
                         {"field": "dataset.name", "reason": "made up"}, follow=True)
    assert "not a missing required field" in response.content.decode()
    assert not Attestation.objects.exists()


def test_attesting_every_missing_field_allows_approval_and_marks_it_not_fully_actionable(
        lena, reviewer, lead, django_capture_on_commit_callbacks, cybertip):
    report = incomplete_report(reviewer, lead)
    report_file = report.files.get()
    for field in ("collected_at", "dataset.vendor"):
        response = lena.post(f"/reports/files/{report_file.pk}/attest/", {"field": field, "reason": "The vendor did not record it."})
        assert response.status_code == 302
    attested = AuditEvent.objects.filter(action="report.attested", actor_name="lena")
    assert sorted(e.data["field"] for e in attested) == ["collected_at", "dataset.vendor"]
    page = lena.get(f"/reports/{report.pk}/").content.decode()
    assert "⚠ collected_at — attested not available by lena: The vendor did not record it." in page
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert lena.post(f"/reports/{report.pk}/approve/").status_code == 302
    report.refresh_from_db()
    assert (report.state, report.fully_actionable, report.approved_by) == (Report.State.APPROVED, False, lead)
    assert len(callbacks) == 1  # the sending task, queued when the approval commits
    assert "Not available: dataset.vendor (a lead attested: The vendor did not record it.)" in ReportFile.objects.get(pk=report_file.pk).details_xml
    approved_event = AuditEvent.objects.get(action="report.approved").data
    assert (approved_event["files"], approved_event["fully_actionable"], approved_event["target"]) == (1, False, "other")
    assert "not fully actionable" in lena.get(f"/reports/{report.pk}/").content.decode()


def test_provenance_the_scanner_adds_later_clears_the_missing_field(api, client, reviewer, lead, reporter_settings):
    metadata = make_metadata("late/1")
    del metadata["provenance"]["dataset"]["vendor"]
    submission_id = push(api, metadata=metadata).json()["id"]
    assert api.get(f"/api/v1/submissions/{submission_id}").json()["provenance_missing"] == ["dataset.vendor"]
    item = previews.item_previews_make(item_id=Submission.objects.get(pk=submission_id).item_id)
    with override_settings(TSREVIEW_QA_SAMPLE_PERCENT=0):
        claim = queue.item_claim(user=reviewer)
        look(reviewer, item, claim)
        decisions.decision_record(user=reviewer, claim=claim, verdict="confirmed", classification="B1")
    report = one_draft(lead)
    assert report_checklist(report).files[0].blocking == ["dataset.vendor"]
    response = api.patch(f"/api/v1/submissions/{submission_id}/provenance", {"dataset": {"vendor": "Acme Data"}}, format="json")
    assert response.status_code == 200 and response.json()["provenance_missing"] == []
    checklist = report_checklist(report)
    assert checklist.files[0].blocking == [] and checklist.fully_actionable


def test_an_incident_time_in_the_future_is_refused(lena, reviewer, lead):
    make_confirmed(1, reviewer)
    report = one_draft(lead)
    response = lena.post(f"/reports/{report.pk}/edit/", {
        "incident_type": Report.IncidentType.CHILD_PORNOGRAPHY, "incident_at": "2999-01-01T00:00:00+00:00",
        "incident_at_description": "guess", "platform": "Example Photos", "additional_info": ""})
    assert response.status_code == 400 and "cannot be in the future" in response.content.decode()
    assert "incident_at_description" not in Report.objects.get(pk=report.pk).overrides


def test_a_lead_edits_the_incident_fields_and_the_change_is_audited(lena, reviewer, lead):
    make_confirmed(1, reviewer)
    report = one_draft(lead)
    response = lena.post(f"/reports/{report.pk}/edit/", {
        "incident_type": Report.IncidentType.CHILD_PORNOGRAPHY, "incident_at": "2026-09-14T05:12:00+02:00",
        "incident_at_description": "Collection time the vendor recorded.", "platform": "Example Photos", "additional_info": "x"})
    assert response.status_code == 302
    report.refresh_from_db()
    assert report_checklist(report).fields["incident_at"].value.isoformat() == "2026-09-14T03:12:00+00:00"
    assert report.overrides["incident_at"] == "2026-09-14T03:12:00+00:00"
    event = AuditEvent.objects.get(action="report.updated")
    assert event.data["new"]["incident_at_description"] == "Collection time the vendor recorded."


# --- The XML -----------------------------------------------------------------------------------

def documents(report: Report):
    report_file = report.files.select_related("submission", "item").get()
    return xml.report_document(report, selectors.report_files(report)), xml.file_details_document(report_file, report_id=900123, file_id="abc123")


def test_the_report_and_file_details_validate_against_ncmecs_schema(reviewer, lead, reporter_settings, shared_schema):
    make_confirmed(1, reviewer, metadata=dataset_metadata("d/1"), annotations=["generativeAi"])
    report_doc, file_doc = documents(one_draft(lead))
    assert shared_schema.validate(report_doc), shared_schema.error_log
    assert shared_schema.validate(file_doc), shared_schema.error_log
    assert [child.tag for child in report_doc] == ["incidentSummary", "internetDetails", "reporter", "additionalInfo"]
    web = report_doc.find("internetDetails/webPageIncident")
    assert web.get("thirdPartyHostedContent") == "true" and web.findtext("url") == "https://host.example/gallery/7"
    assert report_doc.findtext("reporter/reportingPerson/email") == "reports@example.org"
    assert file_doc.findtext("locationOfFile") == "https://host.example/img/1881.jpg"
    assert (file_doc.findtext("publiclyAvailable"), file_doc.findtext("originalFileName")) == ("true", "1881.jpg")
    assert [h.get("hashType") for h in file_doc.findall("originalFileHash")] == ["MD5", "SHA1", "SHA256"]
    assert file_doc.findtext("fileAnnotations/generativeAi") == "true"
    assert file_doc.find("details").get("type") == "HASH" and "list NCMEC" in file_doc.findtext("details/nameValuePair/value")
    info = file_doc.findtext("additionalInfo")
    assert "third-party dataset" in info and "web-images-v3" in info and "Acme Data" in info
    assert xml.validate(report_doc) == [] and xml.validate(file_doc) == []


def test_a_user_upload_names_the_uploader_and_the_upload_ip_event(reviewer, lead, reporter_settings, shared_schema):
    make_confirmed(1, reviewer, metadata=upload_metadata("u/1"))
    report_doc, file_doc = documents(one_draft(lead))
    assert shared_schema.validate(report_doc) and shared_schema.validate(file_doc)
    person = report_doc.find("personOrUserReported")
    assert (person.findtext("espIdentifier"), person.findtext("screenName")) == ("user-1001", "name-of-user-1001")
    assert person.findtext("ipCaptureEvent/ipAddress") == "203.0.113.7"
    assert person.findtext("deviceId/idValue") == "ab-12"
    assert file_doc.findtext("ipCaptureEvent/eventName") == "Upload"
    assert file_doc.findtext("uploadedToEspTimestamp") == "2026-09-01T10:00:00+00:00"
    assert report_doc.find("internetDetails") is None


def test_the_page_of_a_user_upload_report_shows_its_uploader(lena, reviewer, lead):
    make_confirmed(1, reviewer, metadata=upload_metadata("u/1"))
    report = one_draft(lead)
    page = lena.get(f"/reports/{report.pk}/")
    assert page.status_code == 200
    assert "Uploader user-1001 on Example Photos" in page.content.decode()
    assert "✓ uploader.ip_events.upload" in page.content.decode()


def test_file_viewed_by_esp_is_true_when_the_confirming_reviewer_revealed_the_file(reviewer, lead, reporter_settings):
    make_confirmed(1, reviewer, reveal=True)
    _, file_doc = documents(one_draft(lead))
    assert file_doc.findtext("fileViewedByEsp") == "true"


def test_file_viewed_by_esp_is_false_when_the_confirming_reviewer_did_not_reveal_it(reviewer, lead, reporter_settings):
    item = make_item(1, priority=5000)
    look(lead, item)  # someone else's look does not count
    with override_settings(TSREVIEW_QA_SAMPLE_PERCENT=0, TSREVIEW_REQUIRE_VIEW_TO_CONFIRM=False):
        claim = queue.item_claim(user=reviewer)
        decisions.decision_record(user=reviewer, claim=claim, verdict="confirmed", classification="A2")
    report = one_draft(lead)
    _, file_doc = documents(report)
    assert file_doc.findtext("fileViewedByEsp") == "false"
    assert not report_checklist(report).files[0].viewed


@pytest.mark.parametrize("signed", [True, False])
def test_industry_classification_is_sent_only_when_the_mou_is_signed(reviewer, lead, reporter_settings, shared_schema, signed):
    reporter_settings.TSREVIEW_NCMEC_MOU_SIGNED = signed
    make_confirmed(1, reviewer, classification="B2")
    _, file_doc = documents(one_draft(lead))
    assert (file_doc.findtext("industryClassification") == "B2") is signed
    assert (file_doc.find("industryClassification") is None) is not signed
    assert shared_schema.validate(file_doc)


def test_industry_classification_without_the_mou_fails_our_validation(reporter_settings):
    doc = etree.fromstring(b"<fileDetails><reportId>1</reportId><fileId>f</fileId>"
                           b"<industryClassification>A1</industryClassification></fileDetails>")
    assert any("MOU" in e for e in xml.validate(doc))


def test_a_page_on_our_own_host_is_not_marked_third_party(reviewer, lead, reporter_settings):
    reporter_settings.TSREVIEW_OWN_HOSTS = ["host.example"]
    make_confirmed(1, reviewer)
    report_doc, _ = documents(one_draft(lead))
    assert report_doc.find("internetDetails/webPageIncident").get("thirdPartyHostedContent") == "false"


def test_the_report_page_previews_the_xml_and_offers_it_for_download(lena, reviewer, lead):
    make_confirmed(1, reviewer)
    report = one_draft(lead)
    page = lena.get(f"/reports/{report.pk}/").content.decode()
    assert "&lt;incidentSummary&gt;" in page and 'id="valid"' in page
    response = lena.get(f"/reports/{report.pk}/xml/")
    assert response.status_code == 200 and response["Content-Disposition"] == f'attachment; filename="report-{report.pk}.xml"'
    assert etree.fromstring(response.content).tag == "report"
    file_id = report.files.get().pk
    assert etree.fromstring(lena.get(f"/reports/{report.pk}/xml/?file={file_id}").content).tag == "fileDetails"
    assert lena.get(f"/reports/{report.pk}/xml/?file=999999").status_code == 404


def test_without_a_schema_the_page_says_how_to_get_it(lena, reviewer, lead, reporter_settings, tmp_path):
    reporter_settings.TSREVIEW_CYBERTIP_XSD = str(tmp_path / "missing.xsd")
    make_confirmed(1, reviewer)
    report = one_draft(lead)
    assert "cybertip_fetch_xsd" in lena.get(f"/reports/{report.pk}/").content.decode()


def test_without_a_cybertipline_connection_the_page_explains(lena, reviewer, lead, reporter_settings):
    reporter_settings.TSREVIEW_CYBERTIP_BASE_URL = ""
    make_confirmed(1, reviewer)
    report = one_draft(lead)
    page = lena.get(f"/reports/{report.pk}/").content.decode()
    assert 'id="not-configured"' in page and 'id="approve" disabled' in page


# --- Who may -----------------------------------------------------------------------------------

REPORT_URLS = [("get", "/reports/"), ("get", "/reports/{report}/"), ("get", "/reports/{report}/xml/"),
               ("post", "/reports/build/"), ("post", "/reports/{report}/approve/"), ("post", "/reports/{report}/edit/"),
               ("post", "/reports/{report}/reopen/"), ("post", "/reports/{report}/retry/"),
               ("post", "/reports/files/{file}/move/"), ("post", "/reports/files/{file}/attest/"),
               ("post", "/reports/items/{item}/destroy/")]


@pytest.fixture
def draft(reviewer, lead, reporter_settings):
    make_confirmed(1, reviewer)
    return one_draft(lead)


@pytest.mark.parametrize("method,url", REPORT_URLS)
def test_a_reviewer_gets_404_on_every_report_page(client, reviewer, draft, method, url):
    client.force_login(reviewer)
    report_file = draft.files.get()
    response = getattr(client, method)(url.format(report=draft.pk, file=report_file.pk, item=report_file.item_id),
                                       {"reason": "x", "field": "collected_at", "target": "new"})
    assert response.status_code == 404
    assert Report.objects.get(pk=draft.pk).state == Report.State.DRAFT and draft.files.count() == 1
    assert not AuditEvent.objects.filter(actor_name="rita", action__startswith="report.").exists()


@pytest.mark.parametrize("method,url", REPORT_URLS)
def test_anonymous_visitors_are_sent_to_the_login_page(client, draft, method, url):
    report_file = draft.files.get()
    response = getattr(client, method)(url.format(report=draft.pk, file=report_file.pk, item=report_file.item_id))
    assert response.status_code in (302, 403)
    if response.status_code == 302:
        assert response.url.startswith("/login/")
    assert Report.objects.get(pk=draft.pk).state == Report.State.DRAFT


def test_approval_of_a_report_that_is_not_a_draft_is_refused(lena, draft):
    Report.objects.filter(pk=draft.pk).update(state=Report.State.FINISHED)
    response = lena.post(f"/reports/{draft.pk}/approve/", follow=True)
    assert "Only a draft can change" in response.content.decode()
    assert not AuditEvent.objects.filter(action="report.approved").exists()


def test_a_missing_report_is_404(lena, db):
    assert lena.get("/reports/999999/").status_code == 404


def test_the_report_list_shows_reports_by_state_in_few_queries(lena, reviewer, lead, django_assert_max_num_queries):
    for seed in range(6):
        make_confirmed(seed, reviewer, metadata=dataset_metadata(f"d/{seed}", page=f"https://host.example/p/{seed}"))
    drafting.report_draft_build(actor=lead)
    Report.objects.filter(pk=Report.objects.order_by("pk").first().pk).update(state=Report.State.FINISHED)
    with django_assert_max_num_queries(14):
        page = lena.get("/reports/").content.decode()
    assert page.count('href="/reports/') >= 3 and "Draft" in page
    finished = lena.get("/reports/?state=finished").content.decode()
    assert finished.count("<td><a href=\"/reports/") == 1
