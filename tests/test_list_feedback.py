"""Feedback to list owners: NCMEC hash-sharing feedback exactly once per entry and verdict,
against a fake hash-sharing server (devtools/fake_hashsharing.py), including a crash between
sending and recording; and the signed per-list export, checked as its recipient would."""

import base64
import json

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.test import override_settings

from reports import tasks
from reports.feedback import list_feedback
from reports.models import AuditEvent, ListFeedback

from .factories import decide_next, make_item, make_metadata

pytestmark = pytest.mark.django_db


class WorkerCrash(BaseException):
    """The worker dying (nothing catches a BaseException)."""


@pytest.fixture
def hashsharing(settings):
    from devtools.fake_hashsharing import FakeHashSharing

    fake = FakeHashSharing()
    settings.TSREVIEW_NCMEC_HASH_BASE_URL = fake.start()
    settings.TSREVIEW_NCMEC_HASH_USERNAME, settings.TSREVIEW_NCMEC_HASH_PASSWORD = fake.username, fake.password
    settings.TSREVIEW_NCMEC_HASH_ESP_ID = "1001"
    settings.TSREVIEW_NCMEC_HASH_LISTS = ["NCMEC"]
    settings.TSREVIEW_NCMEC_FEEDBACK_REASONS = {"benign": "Not CSAM", "adult": "Not CSAM",
                                                "not_a_match": "Not a match for the fingerprint"}
    settings.TSREVIEW_NCMEC_HASH_TIMEOUT = 2
    yield fake
    fake.stop()


def listed(seed, entry="98213", list_name="NCMEC", hash_type="pdq"):
    match = {"hash_type": hash_type, "hash_value": "f8" * 32 if hash_type == "pdq" else "ab" * 16, "list": list_name,
             "list_entry_id": entry, "distance": 10, "threshold": 31}
    return make_item(seed, metadata=make_metadata(f"lf/{seed}", matches=[match]))


def decide(user, verdict, capture, **fields):
    with override_settings(TSREVIEW_QA_SAMPLE_PERCENT=0), capture(execute=True):
        return decide_next(user, verdict, **fields)


def puts(fake):
    return [c for c in fake.calls if c["method"] == "PUT"]


def test_a_confirmation_agrees_once_per_entry(hashsharing, reviewer, django_capture_on_commit_callbacks):
    listed(1)
    listed(2)  # another item matching the same entry
    decide(reviewer, "confirmed", django_capture_on_commit_callbacks)
    row = ListFeedback.objects.get()
    assert (row.esp_id, row.entry_id, row.fingerprint, row.vote, row.status) == ("1001", "98213", "PDQ", "agree", "sent")
    assert hashsharing.votes == {("1001", "98213", "PDQ"): {"vote": "affirmative", "reason": ""}}
    decide(reviewer, "confirmed", django_capture_on_commit_callbacks)
    assert ListFeedback.objects.count() == 1 and len(puts(hashsharing)) == 1  # at most once per entry and verdict
    sent = AuditEvent.objects.get(action="list_feedback.sent")
    assert sent.data["vote"] == "agree" and sent.data["entry"] == "98213" and "rita" not in json.dumps(sent.data)
    assert b"rita" not in puts(hashsharing)[0]["body"]


def test_not_apparent_csam_disagrees_with_ncmecs_reason(hashsharing, reviewer, django_capture_on_commit_callbacks):
    listed(1, entry="2002/555")  # an entry of another member, named with its ESP id
    decide(reviewer, "not_csam", django_capture_on_commit_callbacks, reason="not_a_match")
    assert hashsharing.votes == {("2002", "555", "PDQ"): {"vote": "negative", "reason": "Not a match for the fingerprint"}}
    row = ListFeedback.objects.get()
    assert (row.vote, row.reason, row.status, row.attempts) == ("disagree", "not_a_match", "sent", 1)


def test_a_crash_between_sending_and_recording_leaves_one_vote_and_one_record(
        hashsharing, reviewer, django_capture_on_commit_callbacks, monkeypatch):
    listed(1)
    real_record = list_feedback._record

    def crash(feedback, status, error):
        raise WorkerCrash

    monkeypatch.setattr(list_feedback, "_record", crash)
    with pytest.raises(WorkerCrash):
        decide(reviewer, "confirmed", django_capture_on_commit_callbacks)
    row = ListFeedback.objects.get()
    assert row.status == "sending" and row.attempts == 1 and len(puts(hashsharing)) == 1  # sent, not recorded
    monkeypatch.setattr(list_feedback, "_record", real_record)
    assert tasks.list_feedback_resume() == 0  # its lease still holds: not sent twice at once
    ListFeedback.objects.update(lease_until="2000-01-01T00:00:00Z")  # the dead worker's lease ran out
    assert tasks.list_feedback_resume() == 1
    row.refresh_from_db()
    assert row.status == "sent" and row.attempts == 2 and row.sent_at
    assert len(puts(hashsharing)) == 2 and puts(hashsharing)[0]["body"] == puts(hashsharing)[1]["body"]
    assert hashsharing.votes == {("1001", "98213", "PDQ"): {"vote": "affirmative", "reason": ""}}  # one vote at NCMEC
    assert AuditEvent.objects.filter(action="list_feedback.sent").count() == 1
    assert tasks.list_feedback_resume() == 0 and len(puts(hashsharing)) == 2


def test_a_transient_failure_is_sent_again_later(hashsharing, reviewer, django_capture_on_commit_callbacks):
    hashsharing.fail(503)
    listed(1)
    decide(reviewer, "confirmed", django_capture_on_commit_callbacks)
    row = ListFeedback.objects.get()
    assert row.status == "pending" and "HTTP 503" in row.last_error and hashsharing.votes == {}
    ListFeedback.objects.update(lease_until="2000-01-01T00:00:00Z")
    tasks.list_feedback_resume()
    assert ListFeedback.objects.get().status == "sent" and len(hashsharing.votes) == 1


def test_a_reason_ncmec_does_not_offer_fails_for_a_lead_to_see(hashsharing, settings, reviewer, lena,
                                                               django_capture_on_commit_callbacks):
    settings.TSREVIEW_NCMEC_FEEDBACK_REASONS = {}
    listed(1)
    decide(reviewer, "not_csam", django_capture_on_commit_callbacks, reason="adult")
    row = ListFeedback.objects.get()
    assert row.status == "failed" and "No NCMEC reason for 'adult'" in row.last_error and hashsharing.votes == {}
    assert AuditEvent.objects.filter(action="list_feedback.failed").exists()
    assert "No NCMEC reason for" in lena.get("/lead/lists/").content.decode()


def test_feedback_is_off_unless_credentials_are_configured(reviewer, lena, django_capture_on_commit_callbacks):
    listed(1)
    decide(reviewer, "confirmed", django_capture_on_commit_callbacks)
    assert not ListFeedback.objects.exists()
    assert 'id="ncmec-off"' in lena.get("/lead/lists/").content.decode()


def test_only_hash_sharing_lists_and_known_fingerprints_get_feedback(hashsharing, reviewer,
                                                                     django_capture_on_commit_callbacks):
    listed(1, list_name="IWF")
    listed(2, hash_type="vpdq")
    decide(reviewer, "confirmed", django_capture_on_commit_callbacks)
    decide(reviewer, "confirmed", django_capture_on_commit_callbacks)
    assert not ListFeedback.objects.exists() and puts(hashsharing) == []


# --- The signed export -------------------------------------------------------------------------

def verify_export(body: bytes) -> dict:
    """What the list owner does: check the Ed25519 signature over the payload text, then read it."""
    envelope = json.loads(body)
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(envelope["signature"]["public_key"]))
    key.verify(base64.b64decode(envelope["signature"]["value"]), envelope["payload"].encode())
    return json.loads(envelope["payload"])


def test_the_signed_export_holds_false_positives_and_confirmed_hashes(reviewer, lena, django_capture_on_commit_callbacks):
    confirmed = listed(1, list_name="IWF", entry="iwf-7")
    listed(2, list_name="IWF", entry="iwf-8")
    listed(3, list_name="Internal", entry="x")
    decide(reviewer, "confirmed", django_capture_on_commit_callbacks)
    decide(reviewer, "not_csam", django_capture_on_commit_callbacks, reason="benign")
    response = lena.get("/lead/lists/export/", {"list": "IWF"})
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment")
    payload = verify_export(response.content)
    assert payload["list"] == "IWF" and payload["format"] == "tsreview-list-export/1"
    assert [(c["list_entry_id"], c["sha256"], c["md5"]) for c in payload["confirmed"]] == [
        ("iwf-7", confirmed.sha256, confirmed.md5)]
    [fp] = payload["false_positives"]
    assert (fp["list_entry_id"], fp["hash_type"], fp["hash_value"], fp["reason"]) == ("iwf-8", "pdq", "f8" * 32, "benign")
    text = response.content.decode()
    assert "rita" not in text and "sha256" not in json.dumps(fp)  # no reviewer; no hash of the benign file
    page = lena.get("/lead/lists/").content.decode()
    assert json.loads(response.content)["signature"]["public_key"] in page
    audit = AuditEvent.objects.get(action="list.exported")
    assert audit.actor_name == "lena" and (audit.data["list"], audit.data["false_positives"], audit.data["confirmed"]) == (
        "IWF", 1, 1)
    assert confirmed.sha256 not in json.dumps(audit.data)


def test_a_tampered_export_fails_verification(reviewer, lena, django_capture_on_commit_callbacks):
    listed(1, list_name="IWF")
    decide(reviewer, "confirmed", django_capture_on_commit_callbacks)
    envelope = json.loads(lena.get("/lead/lists/export/", {"list": "IWF"}).content)
    envelope["payload"] = envelope["payload"].replace('"confirmed": [{', '"confirmed": [{"x": 1, ')
    with pytest.raises(InvalidSignature):
        verify_export(json.dumps(envelope).encode())


def test_export_refuses_bad_input_and_other_roles(reviewer, lena, rita, django_capture_on_commit_callbacks):
    listed(1, list_name="IWF")
    decide(reviewer, "confirmed", django_capture_on_commit_callbacks)
    response = lena.get("/lead/lists/export/", {"list": "Nope"})
    assert response.status_code == 400 and "No matches name the list" in response.content.decode()
    response = lena.get("/lead/lists/export/", {"list": "IWF", "since": "30/11/2026"})
    assert response.status_code == 400 and "YYYY-MM-DD" in response.content.decode()
    assert rita.get("/lead/lists/export/", {"list": "IWF"}).status_code == 404
    assert not AuditEvent.objects.filter(action="list.exported").exists()
    later = verify_export(lena.get("/lead/lists/export/", {"list": "IWF", "since": "2999-01-01"}).content)
    assert later["confirmed"] == [] and later["since"].startswith("2999-01-01")
