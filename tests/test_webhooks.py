"""Decision events to scanners: written with the change, signed per Standard Webhooks, retried
with backoff through a receiver that fails then recovers, dead-lettered after three days and
replayed by a lead, and pulled through the API. Never media, never who decided."""

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from devtools.synthetic import synthetic_image
from reports import tasks
from reports.feedback import webhooks
from reports.intake import previews
from reports.intake.submission import submission_push
from reports.leads.overturn import decision_overturn
from reports.models import AuditEvent, Scanner, ScannerEvent, Submission
from reports.review import decisions, queue

from .factories import look, make_metadata, push
from .support.receiver import Receiver, verify

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    fake = Receiver()
    yield fake
    fake.stop()  # stopping twice is harmless


@pytest.fixture
def crawler(scanner_token, receiver):
    """The API's scanner, with its callback URL at the receiver; returns (scanner, secret)."""
    out = io.StringIO()
    call_command("scanner_webhook", "crawler", "--url", receiver.url, stdout=out)
    return Scanner.objects.get(name="crawler"), out.getvalue().strip()


def queued(api, n=1):
    submission = Submission.objects.get(pk=push(api, metadata=make_metadata(f"hook/{n}"), seed=n).json()["id"])
    previews.item_previews_make(item_id=submission.item_id)
    return submission


def decide(user, verdict="not_csam", **fields):
    with override_settings(TSREVIEW_QA_SAMPLE_PERCENT=0):
        claim = queue.item_claim(user=user)
        if verdict == "confirmed":
            look(user, claim.item, claim)
        return decisions.decision_record(user=user, claim=claim, verdict=verdict, **fields)


def deliver(scanner):
    return webhooks.events_deliver(scanner_id=scanner.pk)


def test_each_event_is_signed_so_the_receiver_can_verify_it(api, crawler, receiver, reviewer):
    scanner, secret = crawler
    assert secret.startswith("whsec_")
    submission = queued(api)
    decide(reviewer, "not_csam", reason="adult")
    assert deliver(scanner) == {"delivered": 2, "failed": 0, "dead": 0}
    assert [e["type"] for e in receiver.events()] == ["submission.queued", "submission.not_confirmed"]
    for request in receiver.received:
        assert verify(secret, request["headers"], request["body"])
        assert request["headers"]["webhook-id"] == json.loads(request["body"])["id"]
        assert not verify("whsec_" + "A" * 44, request["headers"], request["body"])  # another secret fails
        assert not verify(secret, request["headers"], request["body"] + b" ")  # so does a changed body
    data = receiver.events()[1]["data"]
    assert data == {"submission": str(submission.pk), "external_id": "hook/1", "item": submission.item.sha256,
                    "status": "not_confirmed", "reason": "adult"}
    assert ScannerEvent.objects.filter(delivered_at__isnull=False).count() == 2


def test_no_event_names_the_reviewer_or_carries_media(api, crawler, receiver, reviewer, lead):
    queued(api)
    decision = decide(reviewer, "confirmed", classification="A1")
    decision_overturn(lead=lead, item=decision.item, verdict="not_csam", reason="benign", note="adult model, ID on file")
    deliver(crawler[0])
    bodies = [r["body"] for r in receiver.received]
    assert [json.loads(b)["type"] for b in bodies] == ["submission.queued", "submission.confirmed", "submission.not_confirmed"]
    assert json.loads(bodies[2])["data"]["overturned"] is True
    decision.item.refresh_from_db()
    assert (decision.item.verdict, decision.item.verdict_reason) == ("not_csam", "benign")  # what calibration counts
    for body in bodies:
        text = body.decode()
        for identity in ("rita", "lena", "example.org", "reviewer", "A1", "adult model"):
            assert identity not in text
        assert set(json.loads(body)) == {"id", "type", "timestamp", "data"}
        assert set(json.loads(body)["data"]) <= {"submission", "external_id", "item", "status", "reason", "overturned"}
        assert len(body) < 600  # no media bytes


def test_a_failing_receiver_is_retried_with_backoff_until_it_recovers(api, crawler, receiver):
    scanner, secret = crawler
    receiver.fail_next = [503, 500]
    queued(api)
    assert deliver(scanner) == {"delivered": 0, "failed": 1, "dead": 0}
    event = ScannerEvent.objects.get()
    first_wait = event.next_attempt_at - timezone.now()
    assert event.attempts == 1 and event.last_error == "HTTP 503" and timedelta(seconds=25) < first_wait <= timedelta(seconds=30)
    assert deliver(scanner)["failed"] == 0 and len(receiver.received) == 1  # not due yet: nothing sent

    ScannerEvent.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert tasks.scanner_events_sweep() == 1  # the beat task finds it due and queues delivery
    event.refresh_from_db()
    assert event.attempts == 2 and event.last_error == "HTTP 500"
    assert timedelta(seconds=55) < event.next_attempt_at - timezone.now() <= timedelta(seconds=60)  # doubled

    ScannerEvent.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    tasks.scanner_events_sweep()
    event.refresh_from_db()
    assert event.delivered_at and event.attempts == 3 and event.last_error == ""
    ids = {r["headers"]["webhook-id"] for r in receiver.received}
    assert ids == {event.event_id} and len(receiver.received) == 3  # one event id on every attempt
    assert all(verify(secret, r["headers"], r["body"]) for r in receiver.received)
    assert len({r["body"] for r in receiver.received}) == 1


def test_later_events_of_a_submission_wait_for_the_earlier_ones(api, crawler, receiver, reviewer):
    scanner, _ = crawler
    receiver.fail_next = [503]
    queued(api, 1)
    decide(reviewer, "not_csam", reason="benign")
    queued(api, 2)  # another submission is not held up
    assert deliver(scanner) == {"delivered": 1, "failed": 1, "dead": 0}
    assert [e["data"]["external_id"] for e in receiver.events()] == ["hook/1", "hook/2"]
    ScannerEvent.objects.update(next_attempt_at=None)
    deliver(scanner)
    got = [(e["data"]["external_id"], e["type"]) for e in receiver.events()[2:]]
    assert got == [("hook/1", "submission.queued"), ("hook/1", "submission.not_confirmed")]


def test_after_three_days_an_event_is_dead_lettered_and_a_lead_replays_it(
        api, crawler, receiver, lena, rita, django_capture_on_commit_callbacks):
    scanner, secret = crawler
    receiver.fail_next = [503]
    queued(api)
    ScannerEvent.objects.update(retry_since=timezone.now() - timedelta(days=3, seconds=1))
    assert deliver(scanner) == {"delivered": 0, "failed": 0, "dead": 1}
    event = ScannerEvent.objects.get()
    assert event.dead_at and event.next_attempt_at is None
    assert AuditEvent.objects.filter(action="webhook.dead_lettered", subject_id=str(event.pk)).exists()
    ScannerEvent.objects.update(next_attempt_at=None)
    assert deliver(scanner)["delivered"] == 0  # a dead letter is not sent again by itself

    page = lena.get("/lead/webhooks/")
    assert page.status_code == 200 and event.event_id in page.content.decode()
    assert rita.get("/lead/webhooks/").status_code == 404
    assert rita.post("/lead/webhooks/replay/", {"event": event.pk}).status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        response = lena.post("/lead/webhooks/replay/", {"event": event.pk})
    assert response.status_code == 302
    event.refresh_from_db()
    assert event.delivered_at and event.dead_at is None
    assert [r["headers"]["webhook-id"] for r in receiver.received] == [event.event_id] * 2
    assert verify(secret, receiver.received[-1]["headers"], receiver.received[-1]["body"])
    replayed = AuditEvent.objects.get(action="webhook.replayed")
    assert replayed.actor_name == "lena" and replayed.data["events"] == [event.event_id]
    assert "No dead letters" in lena.get("/lead/webhooks/").content.decode()


def test_replaying_nothing_is_refused_and_changes_nothing(lena, crawler):
    response = lena.post("/lead/webhooks/replay/", {"event": "999"})
    assert response.status_code == 400 and "Choose dead letters" in response.content.decode()
    assert not AuditEvent.objects.filter(action="webhook.replayed").exists()


def test_after_a_rotation_both_secrets_sign_for_the_overlap(api, crawler, receiver):
    scanner, old = crawler
    out = io.StringIO()
    call_command("scanner_webhook", "crawler", "--rotate", stdout=out)
    new = out.getvalue().strip()
    assert new.startswith("whsec_") and new != old
    queued(api)
    deliver(scanner)
    [request] = receiver.received
    assert len(request["headers"]["webhook-signature"].split(" ")) == 2
    assert verify(new, request["headers"], request["body"]) and verify(old, request["headers"], request["body"])
    Scanner.objects.update(webhook_secret_previous_until=timezone.now() - timedelta(seconds=1))
    ScannerEvent.objects.update(delivered_at=None)
    deliver(scanner)
    assert verify(new, receiver.received[1]["headers"], receiver.received[1]["body"])
    assert not verify(old, receiver.received[1]["headers"], receiver.received[1]["body"])
    audits = AuditEvent.objects.filter(action="scanner.webhook_configured")
    assert audits.count() == 2 and all(old not in json.dumps(a.data) and new not in json.dumps(a.data) for a in audits)


def test_a_scanner_pulls_its_events_after_the_last_one_it_saw(api, crawler, reviewer, other_scanner_token):
    scanner, _ = crawler
    queued(api, 1)
    decide(reviewer, "not_csam", reason="not_a_match")
    queued(api, 2)
    body = api.get("/api/v1/events").json()
    assert [e["type"] for e in body["events"]] == ["submission.queued", "submission.not_confirmed", "submission.queued"]
    assert body["has_more"] is False and body["next"] == body["events"][-1]["id"]
    assert body["events"][1]["data"]["reason"] == "not_a_match"
    # The pulled event is the webhook's body, byte for byte.
    assert json.dumps(body["events"][0], sort_keys=True, separators=(",", ":")) == ScannerEvent.objects.first().body
    page = api.get("/api/v1/events", {"after": body["events"][0]["id"], "limit": 1}).json()
    assert [e["id"] for e in page["events"]] == [body["events"][1]["id"]] and page["has_more"] is True
    assert api.get("/api/v1/events", {"after": body["next"]}).json() == {"events": [], "next": None, "has_more": False}


def test_event_pull_refuses_bad_input_and_other_scanners(api, crawler, other_scanner_token):
    queued(api)
    mine = ScannerEvent.objects.get().event_id
    assert api.get("/api/v1/events", {"limit": "0"}).json() == {"errors": {"limit": ["A whole number from 1 to 500."]}}
    assert api.get("/api/v1/events", {"limit": "x"}).status_code == 400
    response = api.get("/api/v1/events", {"after": "evt_nope"})
    assert response.status_code == 400 and "after" in response.json()["errors"]
    from rest_framework.test import APIClient

    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {other_scanner_token}")
    assert other.get("/api/v1/events").json()["events"] == []
    assert other.get("/api/v1/events", {"after": mine}).status_code == 400
    assert APIClient().get("/api/v1/events").status_code == 401


def test_events_are_in_the_openapi_schema(client):
    schema = client.get("/api/v1/schema", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/v1/events" in schema and "event_list" in schema and "submission.not_confirmed" in schema


def test_a_scanner_without_a_callback_url_only_pulls(scanner_token, reviewer):
    scanner = Scanner.objects.get(name="crawler")
    result = submission_push(scanner=scanner, document=make_metadata("pull/1"), data=synthetic_image(5),
                             claimed_type="image/jpeg")
    previews.item_previews_make(item_id=result.submission.item_id)
    assert webhooks.events_deliver(scanner_id=scanner.pk) == {"delivered": 0, "failed": 0, "dead": 0}
    assert ScannerEvent.objects.get().delivered_at is None
    assert webhooks.scanners_with_due_events() == []


def test_the_scanner_hears_reported_with_the_ncmec_report_id(
        api, crawler, receiver, reviewer, lead, cybertip, django_capture_on_commit_callbacks):
    from reports.reporting import drafting, lifecycle

    submission = queued(api)
    decide(reviewer, "confirmed", classification="A1")
    report = drafting.report_draft_build(actor=lead)[0]
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.report_approve(actor=lead, report=report)
    report.refresh_from_db()
    deliver(crawler[0])
    last = receiver.events()[-1]
    assert last["type"] == "submission.reported"
    assert last["data"] == {"submission": str(submission.pk), "external_id": "hook/1", "item": submission.item.sha256,
                            "status": "reported", "report": str(report.ncmec_report_id)}


def test_an_endpoint_that_does_not_answer_stops_the_run_and_the_rest_wait(api, crawler, receiver):
    scanner, _ = crawler
    queued(api, 1)
    queued(api, 2)
    receiver.stop()  # nothing listens on the port any more
    assert deliver(scanner) == {"delivered": 0, "failed": 1, "dead": 0}
    first, second = ScannerEvent.objects.order_by("id")
    assert first.attempts == 1 and first.next_attempt_at and "Connection" in first.last_error
    assert second.attempts == 0 and second.delivered_at is None  # not tried against a dead endpoint


def test_a_new_sighting_of_a_known_item_hears_where_the_item_is(api, crawler, receiver, reviewer):
    first = queued(api, 1)
    again = push(api, metadata=make_metadata("hook/again"), seed=1).json()  # the same bytes, waiting
    assert again["duplicate"] is True
    decide(reviewer, "not_csam", reason="unreadable")
    late = push(api, metadata=make_metadata("hook/late"), seed=1).json()  # the same bytes, decided
    deliver(crawler[0])
    got = {}
    for e in receiver.events():  # in order per submission (across submissions no order is promised)
        got.setdefault(e["data"]["external_id"], []).append((e["type"], e["data"].get("reason")))
    assert got == {"hook/1": [("submission.queued", None), ("submission.not_confirmed", "unreadable")],
                   "hook/again": [("submission.queued", None), ("submission.not_confirmed", "unreadable")],
                   "hook/late": [("submission.not_confirmed", "unreadable")]}
    assert {e["data"]["item"] for e in receiver.events()} == {first.item.sha256} and late["status"] == "not_confirmed"
