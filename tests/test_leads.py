"""Audit trail, QA and the lead workspace (DESIGN §6)."""

import csv
import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import IntegrityError, InternalError, ProgrammingError
from django.utils import timezone

from reports.models import AuditEvent, Claim, Decision, ExposureDay, Item, WellnessPolicy
from reports.review import queue
from reports.review.decisions import decision_record

from .factories import decide_next, look, look_via, make_item, make_metadata, make_user

pytestmark = pytest.mark.django_db
REFUSED = (InternalError, ProgrammingError, IntegrityError)


# --- The audit log ------------------------------------------------------------------------------

def test_verify_audit_passes_on_an_intact_chain(reviewer, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    make_item(1)
    decide_next(reviewer)
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert f"intact: {AuditEvent.objects.count()} events" in out.getvalue()


# What the database refuses and what verify_audit catches, tampering by tampering, as the runtime
# role and as an insider: tests/test_audit.py.


def test_logins_and_failed_logins_are_audited(client, reviewer):
    client.post("/login/", {"username": "rita", "password": "wrong"})
    client.post("/login/", {"username": "rita", "password": "correct horse battery staple"})
    assert AuditEvent.objects.get(action="user.login_failed").data["username"] == "rita"
    assert AuditEvent.objects.get(action="user.login").actor_name == "rita"
    client.post("/logout/")
    assert AuditEvent.objects.filter(action="user.logout", actor_name="rita").exists()


# --- Permissions --------------------------------------------------------------------------------

LEAD_PAGES = ["/lead/decisions/", "/lead/decisions.csv", "/lead/items/{item}/", "/lead/escalations/", "/lead/stats/"]


@pytest.mark.parametrize("url", LEAD_PAGES)
def test_lead_pages_are_for_leads_only(client, reviewer, lead, url):
    url = url.format(item=make_item(1).pk)
    assert client.get(url).status_code == 302  # anonymous: to the login page
    client.force_login(reviewer)
    assert client.get(url).status_code == 404
    client.force_login(lead)
    assert client.get(url).status_code == 200


def test_reviewers_cannot_overturn_or_take_escalations(client, reviewer, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    make_item(1)
    decision = decide_next(reviewer)
    client.force_login(reviewer)
    response = client.post(f"/lead/items/{decision.item_id}/overturn/", {"verdict": "not_csam", "reason": "adult", "note": "x"})
    assert response.status_code == 404
    assert client.post("/lead/escalations/claim/").status_code == 404
    assert Decision.objects.count() == 1


# --- The decision log ---------------------------------------------------------------------------

@pytest.fixture
def history(reviewer, second_reviewer, settings):
    """Four decisions by two reviewers over two lists and two kinds of source."""
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    crawl = make_metadata("crawl/1")
    crawl["provenance"] = {"source_type": "web_crawl", "page_url": "https://host.example/p"}
    crawl["matches"][0]["list"] = "IWF"
    # Claimed in this order (the priority policy would put the web crawl first).
    make_item(1, priority=40), make_item(2, metadata=crawl, priority=30), make_item(3, priority=20), make_item(4, priority=10)
    return [decide_next(reviewer, classification="A1"), decide_next(reviewer, "not_csam", reason="adult"),
            decide_next(second_reviewer, classification="B2"), decide_next(second_reviewer, "escalated", note="age?")]


@pytest.mark.parametrize("query, expected", [
    ("", [0, 1, 2, 3]),
    ("reviewer={rita}", [0, 1]),
    ("verdict=confirmed", [0, 2]),
    ("classification=B2", [2]),
    ("hash_list=IWF", [1]),
    ("source_type=web_crawl", [1]),
    ("source_type=third_party_dataset&verdict=escalated", [3]),
    ("date_from={tomorrow}", []),
    ("date_to={today}", [0, 1, 2, 3]),
])
def test_the_decision_log_filters(client, lead, reviewer, history, query, expected):
    client.force_login(lead)
    today = timezone.localdate()
    query = query.format(rita=reviewer.pk, today=today, tomorrow=today + timedelta(days=1))
    response = client.get(f"/lead/decisions/?{query}")
    assert response.status_code == 200
    shown = [d.pk for d in response.context["page"]]
    assert sorted(shown) == sorted(history[i].pk for i in expected)


def test_a_bad_date_range_is_a_clear_error(client, lead, history):
    client.force_login(lead)
    response = client.get("/lead/decisions/?date_from=2026-02-01&date_to=2026-01-01")
    assert response.status_code == 400
    assert "The start date is after the end date" in response.content.decode()


def test_the_decision_log_pages_without_extra_queries(client, lead, reviewer, django_assert_max_num_queries):
    now = timezone.now()
    item = make_item(1)
    Decision.objects.bulk_create(Decision(item=item, reviewer=reviewer, reviewer_name="rita", verdict="not_csam",
                                          reason="benign", decided_at=now - timedelta(seconds=i)) for i in range(120))
    client.force_login(lead)
    with django_assert_max_num_queries(20):  # a constant: no query per row
        response = client.get("/lead/decisions/?page=2")
    assert len(response.context["page"]) == 50 and "Page 2 of 3" in response.content.decode()


def test_the_csv_export_streams_the_same_filter_and_is_audited(client, lead, history):
    client.force_login(lead)
    response = client.get("/lead/decisions.csv?verdict=confirmed")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert sorted(int(r["decision_id"]) for r in rows) == sorted([history[0].pk, history[2].pk])
    assert {r["viewed_unblurred"] for r in rows} == {"True"}
    assert AuditEvent.objects.get(action="decisions.exported").data["filter"] == {"verdict": "confirmed"}


# --- Timeline and overturn ----------------------------------------------------------------------

def test_the_item_timeline_tells_what_happened_in_order(client, lead, reviewer, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    make_item(1)
    decision = decide_next(reviewer)
    client.force_login(lead)
    response = client.get(f"/lead/items/{decision.item_id}/")
    actions = [e["action"] for e in response.context["timeline"]]
    assert actions == ["item.created", "submission.created", "item.previews_made", "item.queued", "claim.started",
                       "media.original", "media.view_ended", "decision.recorded", "claim.decided"]
    page = response.content.decode()
    assert "rita revealed the original (hold)" in page and "rita decided: confirmed A1 · viewed unblurred" in page
    assert "web-images-v3" in page  # the provenance


def test_an_overturn_is_a_new_decision_that_supersedes_the_old(client, lead, reviewer, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    make_item(1)
    original = decide_next(reviewer)
    client.force_login(lead)
    response = client.post(f"/lead/items/{original.item_id}/overturn/",
                           {"verdict": "not_csam", "reason": "adult", "note": "Adult; verified with the source."})
    assert response.status_code == 302
    overturn = Decision.objects.exclude(pk=original.pk).get()
    assert (overturn.supersedes, overturn.verdict, overturn.reviewer) == (original, "not_csam", lead)
    assert Decision.objects.get(pk=original.pk).verdict == "confirmed"  # never edited
    assert Item.objects.get(pk=original.item_id).verdict == "not_csam"
    event = AuditEvent.objects.get(action="decision.overturned")
    assert event.data["old"]["verdict"] == "confirmed" and event.data["note"] == "Adult; verified with the source."


def test_an_overturn_needs_a_reason_and_a_confirmation_needs_the_leads_own_look(client, lead, reviewer, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    make_item(1)
    original = decide_next(reviewer, "not_csam", reason="benign")
    client.force_login(lead)
    url = f"/lead/items/{original.item_id}/overturn/"
    assert client.post(url, {"verdict": "confirmed", "classification": "A1", "note": ""}).status_code == 400
    response = client.post(url, {"verdict": "confirmed", "classification": "A1", "note": "Missed it."})
    assert response.status_code == 400 and "Reveal the file before confirming" in response.content.decode()
    look_via(client, original.item_id)
    assert client.post(url, {"verdict": "confirmed", "classification": "A1", "note": "Missed it."}).status_code == 302
    assert Decision.objects.get(supersedes=original).viewed_unblurred is True


# --- QA and escalations -------------------------------------------------------------------------

def test_sampled_decisions_get_a_blind_second_review_by_someone_else(client, reviewer, second_reviewer, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 100
    item = make_item(1)
    decide_next(reviewer, classification="A2")
    assert Item.objects.get(pk=item.pk).state == Item.State.QA
    assert queue.item_claim(user=reviewer) is None  # never the first reviewer
    claim = queue.item_claim(user=second_reviewer)
    assert (claim.item, claim.stage) == (item, Claim.Stage.QA)
    client.force_login(second_reviewer)
    page = client.get(f"/review/{item.pk}/").content.decode()
    # Without the CSRF token (in a form field and a meta tag: random text that may hold "A2").
    shown = re.sub(r"[A-Za-z0-9]{32,}", "", page).split('id="decision"')[0]
    assert "Earlier decisions" not in page and "A2" not in shown
    look(second_reviewer, item, claim)
    decision_record(user=second_reviewer, claim=claim, verdict="confirmed", classification="A1")
    assert Item.objects.get(pk=item.pk).state == Item.State.DECIDED  # same verdict: agreement


def test_a_qa_disagreement_goes_to_a_lead_who_decides(client, reviewer, second_reviewer, lead, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 100
    item = make_item(1)
    decide_next(reviewer, classification="A1")
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    decide_next(second_reviewer, "not_csam", reason="adult")
    assert Item.objects.get(pk=item.pk).state == Item.State.ESCALATED
    client.force_login(lead)
    assert "QA disagreed" in client.get("/lead/escalations/").content.decode()
    response = client.post("/lead/escalations/claim/")
    assert response.url == f"/review/{item.pk}/"
    page = client.get(response.url).content.decode()
    assert "Earlier decisions" in page and "rita (review): Confirmed A1" in page and "sam (qa): not apparent CSAM" in page
    assert 'value="escalated"' not in page  # a lead decides
    look_via(client, item.pk)
    client.post(f"/review/{item.pk}/decide/", {"verdict": "not_csam", "reason": "adult", "note": "Adult."})
    item.refresh_from_db()
    assert (item.state, item.verdict) == (Item.State.DECIDED, "not_csam")
    assert Decision.objects.filter(item=item).values_list("stage", flat=True).count() == 3


def test_unsure_items_wait_for_a_lead_in_the_escalation_queue(client, reviewer, lead, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    item = make_item(1)
    decide_next(reviewer, "escalated", note="Could be an adult.")
    client.force_login(lead)
    page = client.get("/lead/escalations/").content.decode()
    assert f"item {item.pk}" in page and "reviewer unsure" in page and "Could be an adult." in page
    assert queue.item_claim(user=reviewer) is None  # not back in the reviewers' queue


# --- Statistics ---------------------------------------------------------------------------------

def test_reviewer_stats_count_decisions_agreement_and_overturns(client, reviewer, second_reviewer, lead, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 100
    make_item(1), make_item(2)
    decide_next(reviewer, classification="A1")  # item 1 → QA
    decide_next(reviewer, "not_csam", reason="benign")  # item 2 → QA
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    decide_next(second_reviewer, classification="A1")  # agrees
    disagreeing = decide_next(second_reviewer, classification="B1")  # disagrees → lead
    client.force_login(lead)
    look_via(client, disagreeing.item_id)
    client.post(f"/lead/items/{disagreeing.item_id}/overturn/", {"verdict": "confirmed", "classification": "B1", "note": "x"})
    # The escalated item is not decided yet, so the overturn is refused; decide it as the lead.
    claim = queue.item_claim(user=lead, stages=(Claim.Stage.LEAD,))
    decision_record(user=lead, claim=claim, verdict="confirmed", classification="B1")
    first = Decision.objects.get(item=disagreeing.item, stage="review")
    client.post(f"/lead/items/{disagreeing.item_id}/overturn/", {"verdict": "not_csam", "reason": "benign", "note": "QA was wrong"})
    rows = {r["name"]: r for r in client.get("/lead/stats/").context["rows"]}
    assert rows["rita"]["decisions"] == 2 and rows["rita"]["qa_checked"] == 2 and rows["rita"]["agreement"] == 50
    assert rows["sam"]["decisions"] == 2 and rows["sam"]["qa_checked"] == 0
    assert rows["lena"]["overturn_rate"] == 100  # the lead's own escalation decision was overturned
    assert first.verdict == "not_csam"


def test_team_exposure_is_a_distribution_with_those_near_the_cap(client, lead):
    policy = WellnessPolicy.current()
    today = timezone.localdate()
    for n, seconds in enumerate([10, 20, 30, 40, 800, 950]):
        ExposureDay.objects.create(user=make_user(f"r{n}", "reviewer"), day=today, unblurred_seconds=seconds)
    client.force_login(lead)
    response = client.get("/lead/stats/")
    exposure = response.context["exposure"]
    assert exposure["reviewers"] == 6 and exposure["median"] == 35 and exposure["p90"] == 950
    assert exposure["over_cap"] == 1 and policy.daily_cap_seconds == 900
    assert exposure["near_cap"] == ["r4", "r5"]
    assert "check in: r4, r5" in response.content.decode()


def test_an_admins_change_to_the_wellness_limits_is_audited(client, db):
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("ada", "ada@example.org", "a long admin passphrase")
    policy = WellnessPolicy.current()
    client.force_login(admin)
    fields = {"min_blur": 3, "allow_colour": "on", "max_reveal_seconds": 10, "max_size": "large", "daily_cap_seconds": 600,
              "daily_cap_items": 400, "break_after_minutes": 50, "max_reveal_clamp_seconds": 60}
    response = client.post(f"/admin/reports/wellnesspolicy/{policy.pk}/change/", fields)
    assert response.status_code == 302
    assert WellnessPolicy.current().daily_cap_seconds == 600
    event = AuditEvent.objects.get(action="wellnesspolicy.changed")
    assert event.data["old"]["daily_cap_seconds"] == 900 and event.data["new"]["daily_cap_seconds"] == 600
    assert event.actor_name == "ada"
