"""Scanner text that a report (XML 1.0) cannot carry is refused at intake and PATCH, naming the
field; text stored before that check still builds a report (marked, never a 500). JSON nested
deeper than TSREVIEW_MAX_JSON_DEPTH is a 400 naming the limit. Every API error is JSON."""

import json

import pytest
from django.db import connection
from lxml import etree

from reports.cybertip.xml import NOT_XML_MARKER
from reports.models import AuditEvent, Report, Submission

from .factories import make_confirmed, make_metadata, push

pytestmark = pytest.mark.django_db

BAD = ["\x01", "\x08", "\x0b", "\x1f", "\ufffe", "\uffff", "\ud800"]


def with_value(path: str, value) -> dict:
    metadata = make_metadata()
    target = metadata
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    target[parts[-1]] = value
    return metadata


FIELDS = [
    ("external_id", "obj{}"),
    ("provenance.platform", "Example{}Photos"),
    ("provenance.original_filename", "a{}.jpg"),
    ("provenance.dataset.name", "web{}"),
    ("provenance.dataset.vendor_source", "from {} somewhere"),
    ("provenance.location_url", "https://host.example/img/1{}.jpg"),
    ("provenance.page_url", "https://host.example/{}"),
    ("provenance.uploader", {"screen_name": "x{}y"}),
    ("provenance.uploader", {"device_ids": [{"type": "idfa", "value": "v{}"}]}),
    ("matches.0.hash_value", "abc{}"),
    ("matches.0.list", "NC{}MEC"),
    ("matches.0.label", "A{}"),
]


def _named(body: dict, expected: str) -> bool:
    return any(name.startswith(expected) and "XML 1.0" in " ".join(msgs) for name, msgs in body["errors"].items())


@pytest.mark.parametrize(("path", "template"), FIELDS)
@pytest.mark.parametrize("char", BAD, ids=[f"U+{ord(c):04X}" for c in BAD])
def test_a_character_xml_cannot_carry_is_refused_at_intake_naming_the_field(api, assert_nothing_stored, path, template, char):
    value = json.loads(json.dumps(template).replace("{}", json.dumps(char)[1:-1]))
    if path == "matches.0.hash_value":  # a free-form hash type, whose value is taken as sent
        metadata = with_value("matches.0.hash_type", "other:vendorhash")
        metadata["matches"][0]["hash_value"] = value
    else:
        metadata = with_value(path, value)
    response = push(api, metadata=metadata)
    assert response.status_code == 400, response.content
    assert _named(response.json(), "metadata." + path.replace(".0.", "[0]."))
    assert_nothing_stored()


def test_a_bad_character_in_a_field_name_is_refused_too(api, assert_nothing_stored):
    metadata = make_metadata()
    metadata["provenance"]["plat\x02form"] = "x"
    response = push(api, metadata=metadata)
    assert response.status_code == 400 and "XML 1.0" in json.dumps(response.json())
    assert_nothing_stored()


def test_tab_newline_and_other_scripts_are_accepted(api):
    metadata = with_value("provenance.platform", "Example\tPhotos\r\nÆøå — 写真 🙂 \u0085")
    assert push(api, metadata=metadata).status_code == 201


@pytest.mark.parametrize("field,value", [
    ("platform", "Ex\x01"), ("original_filename", "\uffff.jpg"), ("page_url", "https://host.example/\x1b"),
    ("uploader", {"ip_events": [], "esp_identifier": "\ud83d"}),
])
def test_a_provenance_patch_with_such_a_character_is_refused_and_changes_nothing(api, field, value):
    submission_id = push(api).json()["id"]
    before = Submission.objects.get(pk=submission_id).provenance
    events = AuditEvent.objects.count()
    response = api.generic("PATCH", f"/api/v1/submissions/{submission_id}/provenance", json.dumps({field: value}),
                           content_type="application/json")  # ASCII JSON: "\ud83d" as a scanner would send it
    assert response.status_code == 400, response.content
    assert _named(response.json(), field)
    assert Submission.objects.get(pk=submission_id).provenance == before
    assert AuditEvent.objects.count() == events


# --- Text stored before the check -----------------------------------------------------------------

def test_stored_text_xml_cannot_carry_still_gives_a_draft_page_a_download_and_an_approval(
        lena, reviewer, cybertip, django_capture_on_commit_callbacks):
    item = make_confirmed(1, reviewer)
    submission = item.submissions.get()
    # As if stored before intake refused it: written straight into the database.
    provenance = {**submission.provenance, "platform": "Bad\x01Platform", "original_filename": "x\x1f\ufffe.jpg",
                  "page_url": "https://host.example/\x0bpage"}
    with connection.cursor() as cursor:
        cursor.execute("UPDATE reports_submission SET provenance = %s WHERE id = %s",
                       [json.dumps(provenance), submission.pk])
        cursor.execute("UPDATE reports_match SET list_name = %s WHERE submission_id = %s", ["NC\x02MEC", submission.pk])
    assert lena.post("/reports/build/").status_code == 302
    report = Report.objects.get()

    page = lena.get(f"/reports/{report.pk}/")
    assert page.status_code == 200
    download = lena.get(f"/reports/{report.pk}/xml/")
    assert download.status_code == 200
    document = etree.fromstring(download.content)  # well-formed XML
    assert f"Bad{NOT_XML_MARKER}Platform" in document.findtext("incidentSummary/platform")
    file_id = report.files.get().pk
    details = lena.get(f"/reports/{report.pk}/xml/?file={file_id}")
    assert details.status_code == 200
    parsed = etree.fromstring(details.content)
    assert parsed.findtext("originalFileName") == f"x{NOT_XML_MARKER}{NOT_XML_MARKER}.jpg"
    assert f"NC{NOT_XML_MARKER}MEC" in etree.tostring(parsed, encoding="unicode")

    with django_capture_on_commit_callbacks(execute=False):
        approve = lena.post(f"/reports/{report.pk}/approve/")
    assert approve.status_code == 302
    report.refresh_from_db()
    assert report.state == Report.State.APPROVED
    assert NOT_XML_MARKER in report.report_xml


# --- Nesting --------------------------------------------------------------------------------------

def nested(depth: int) -> dict:
    value = "deep"
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("depth", [40, 5000, 200_000])
def test_metadata_nested_deeper_than_the_limit_is_a_400_naming_it(api, assert_nothing_stored, settings, depth):
    metadata = make_metadata()
    raw = json.dumps(metadata)[:-1] + ', "extra": ' + "[" * depth + "]" * depth + "}"
    response = push(api, raw_metadata=raw)
    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"] == "application/json"
    message = json.dumps(response.json())
    assert "TSREVIEW_MAX_JSON_DEPTH" in message and str(settings.TSREVIEW_MAX_JSON_DEPTH) in message
    assert_nothing_stored()


@pytest.mark.parametrize("depth", [40, 5000, 200_000])
def test_a_patch_nested_deeper_than_the_limit_is_a_400_naming_it(api, settings, depth):
    submission_id = push(api).json()["id"]
    events = AuditEvent.objects.count()
    body = '{"dataset": ' + "[" * depth + "]" * depth + "}"
    response = api.generic("PATCH", f"/api/v1/submissions/{submission_id}/provenance", body,
                           content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert "TSREVIEW_MAX_JSON_DEPTH" in json.dumps(response.json())
    assert AuditEvent.objects.count() == events


def test_the_nesting_limit_is_a_setting(api, settings):
    settings.TSREVIEW_MAX_JSON_DEPTH = 3  # the example document nests 5 levels
    response = push(api)
    assert response.status_code == 400 and "limit of 3 levels" in json.dumps(response.json())
    settings.TSREVIEW_MAX_JSON_DEPTH = 32
    assert push(api).status_code == 201


def test_an_unexpected_error_on_the_api_is_json(api, monkeypatch):
    from reports.api import views

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(views.intake, "submission_push", broken)
    api.raise_request_exception = False
    response = push(api)
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json" and "server" in response.json()["errors"]
    assert "boom" not in response.content.decode()


def test_an_unknown_api_path_is_a_json_404(api, client):
    for caller in (api, client):
        response = caller.get("/api/v1/no-such-thing")
        assert response.status_code == 404 and response["Content-Type"] == "application/json"
        assert response.json() == {"errors": {"path": ["Not found."]}}
