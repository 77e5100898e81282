"""Quarantine of an over-matching list entry: after K (3) not apparent CSAM verdicts and no
confirmation, its matches still queue but wait below others and are labelled before any reveal;
a lead lifts it. Audited throughout."""


from datetime import timedelta

import pytest
from django.db.models import F
from django.test import override_settings

from devtools.synthetic import synthetic_image
from reports.intake.quarantine import PENALTY
from reports.intake.submission import submission_push
from reports.models import AuditEvent, EntryQuarantine, FeedbackPolicy, Item, Scanner
from reports.review import queue

from .factories import decide_next, make_item, make_metadata

pytestmark = pytest.mark.django_db


def entry_item(seed, entry):
    match = {"hash_type": "pdq", "hash_value": "f8" * 32, "list": "NCMEC", "list_entry_id": entry, "distance": 20,
             "threshold": 31, "label": "A1"}
    return make_item(seed, metadata=make_metadata(f"q/{seed}", matches=[match]))


@pytest.fixture
def quarantined(reviewer, django_capture_on_commit_callbacks):
    """Three false matches of entry bad-1; one more of its items still waiting (w), and an
    item of another entry queued after it (g)."""
    for seed in (1, 2, 3):
        entry_item(seed, "bad-1")
    waiting, other = entry_item(4, "bad-1"), entry_item(5, "good-7")
    waiting.placed, other.placed = waiting.priority, other.priority  # as the priority policy placed them
    with override_settings(TSREVIEW_QA_SAMPLE_PERCENT=0), django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            decide_next(reviewer, "not_csam", reason="not_a_match")
    return waiting, other


def test_three_false_matches_quarantine_the_entry_and_demote_its_waiting_items(quarantined):
    waiting, other = quarantined
    quarantine = EntryQuarantine.objects.get()
    assert (quarantine.list_name, quarantine.list_entry_id, quarantine.false_matches) == ("NCMEC", "bad-1", 3)
    waiting.refresh_from_db()
    assert waiting.quarantined and waiting.priority == waiting.placed - PENALTY and waiting.state == Item.State.QUEUED
    assert Item.objects.get(pk=other.pk).priority == other.placed
    assert list(Item.objects.filter(verdict="not_csam").values_list("verdict_reason", flat=True)) == ["not_a_match"] * 3
    audit = AuditEvent.objects.get(action="entry.quarantined")
    assert audit.data == {"list": "NCMEC", "entry": "bad-1", "false_matches": 3, "after": 3}
    assert AuditEvent.objects.get(action="entry.items_demoted").data["items"] == 1


def test_a_quarantined_entrys_match_waits_below_others_and_is_labelled_before_reveal(quarantined, reviewer, rita):
    waiting, other = quarantined
    assert queue.item_claim(user=reviewer).item_id == other.pk  # queued later, but taken first
    page = rita.get(f"/review/{other.pk}/").content.decode()
    assert "entry quarantined" not in page
    decide_next(reviewer, "not_csam", reason="benign")
    claim = queue.item_claim(user=reviewer)
    assert claim.item_id == waiting.pk
    page = rita.get(f"/review/{waiting.pk}/").content.decode()
    assert "entry quarantined: 3 false matches" in page and "(NCMEC entry bad-1)" in page
    assert page.index("entry quarantined") < page.index('id="reveal"')  # read before any reveal


def test_a_new_match_to_a_quarantined_entry_is_demoted_as_it_is_queued(quarantined):
    _, other = quarantined  # the same kind of match, of another entry: placed as `fresh` would be
    fresh = entry_item(6, "bad-1")
    assert fresh.quarantined and fresh.priority == other.placed - PENALTY
    queued = AuditEvent.objects.filter(action="item.queued", item_id=fresh.pk).get()
    assert queued.data["quarantined_entry"] is True


def test_only_a_match_to_an_entry_quarantined_now_is_demoted_as_it_is_queued(quarantined, lena):
    _, other = quarantined
    assert not entry_item(7, "good-7").quarantined  # another entry of the same list
    assert not entry_item(8, "").quarantined  # a match naming no entry
    quarantine = EntryQuarantine.objects.get()
    assert lena.post(f"/lead/quarantine/{quarantine.pk}/lift/", {"reason": "entry fixed"}).status_code == 302
    after_lift = entry_item(9, "bad-1")
    assert not after_lift.quarantined and after_lift.priority == other.placed
    assert "quarantined_entry" not in AuditEvent.objects.get(action="item.queued", item_id=after_lift.pk).data


def test_a_lead_lifts_the_quarantine_and_the_items_get_their_place_back(quarantined, lena, rita):
    waiting, _ = quarantined
    quarantine = EntryQuarantine.objects.get()
    assert rita.post(f"/lead/quarantine/{quarantine.pk}/lift/", {"reason": "x"}).status_code == 404
    response = lena.post(f"/lead/quarantine/{quarantine.pk}/lift/", {"reason": "  "})
    assert response.status_code == 400 and "Say why" in response.content.decode()
    assert EntryQuarantine.objects.get().lifted_at is None
    assert "bad-1" in lena.get("/lead/quarantine/").content.decode()
    response = lena.post(f"/lead/quarantine/{quarantine.pk}/lift/", {"reason": "list owner fixed the entry"})
    assert response.status_code == 302
    quarantine.refresh_from_db()
    assert quarantine.lifted_at and quarantine.lifted_by.username == "lena"
    waiting.refresh_from_db()
    assert not waiting.quarantined and waiting.priority == waiting.placed
    lifted = AuditEvent.objects.get(action="entry.quarantine_lifted")
    assert lifted.actor_name == "lena" and lifted.data["reason"] == "list owner fixed the entry"
    assert lifted.data["items_restored"] == 1
    assert lena.post(f"/lead/quarantine/{quarantine.pk}/lift/", {"reason": "again"}).status_code == 400
    assert "No list entry is quarantined" in lena.get("/lead/quarantine/").content.decode()
    assert lena.post("/lead/quarantine/999/lift/", {"reason": "x"}).status_code == 404


def test_after_a_lift_counting_starts_afresh(quarantined, reviewer, lena, django_capture_on_commit_callbacks):
    quarantine = EntryQuarantine.objects.get()
    lena.post(f"/lead/quarantine/{quarantine.pk}/lift/", {"reason": "retrying"})
    FeedbackPolicy.objects.update_or_create(pk=1, defaults={"quarantine_after": 2})
    entry_item(7, "bad-1")
    with override_settings(TSREVIEW_QA_SAMPLE_PERCENT=0), django_capture_on_commit_callbacks(execute=True):
        assert decide_next(reviewer, "not_csam", reason="benign").item_id == quarantined[0].pk  # one since the lift
        assert decide_next(reviewer, "not_csam", reason="benign").item_id == quarantined[1].pk  # another entry
        assert not EntryQuarantine.objects.filter(lifted_at__isnull=True).exists()
        decide_next(reviewer, "not_csam", reason="benign")  # seed 7: the second since the lift
    assert EntryQuarantine.objects.filter(lifted_at__isnull=True, list_entry_id="bad-1").count() == 1


def test_an_entry_with_a_confirmation_is_never_quarantined(reviewer, django_capture_on_commit_callbacks):
    for seed in range(1, 5):
        entry_item(seed, "mixed-2")
    with override_settings(TSREVIEW_QA_SAMPLE_PERCENT=0), django_capture_on_commit_callbacks(execute=True):
        decide_next(reviewer, "confirmed")
        for _ in range(3):
            decide_next(reviewer, "not_csam", reason="adult")
    assert not EntryQuarantine.objects.exists()
    assert not AuditEvent.objects.filter(action="entry.quarantined").exists()


def test_a_new_sighting_of_a_waiting_item_with_a_quarantined_entry_is_demoted(reviewer, django_capture_on_commit_callbacks):
    waiting = make_item(9)  # matched by the default list entry, not by bad-1
    for seed in (1, 2, 3):
        entry_item(seed, "bad-1")
    with override_settings(TSREVIEW_QA_SAMPLE_PERCENT=0), django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            Item.objects.filter(pk=waiting.pk).update(priority=-1, rank_at=F("rank_at") + timedelta(days=365))  # decided last
            decide_next(reviewer, "not_csam", reason="not_a_match")
    waiting.refresh_from_db()
    assert waiting.state == Item.State.QUEUED and not waiting.quarantined
    match = {"hash_type": "pdq", "hash_value": "f8" * 32, "list": "NCMEC", "list_entry_id": "bad-1", "distance": 20}
    submission_push(scanner=Scanner.objects.get(name="fixture-scanner"), document=make_metadata("q/again", matches=[match]),
                    data=synthetic_image(9, size=(320, 240)), claimed_type="image/jpeg")  # make_item's bytes
    waiting.refresh_from_db()
    assert waiting.quarantined and waiting.priority == -1 - PENALTY
    assert waiting.submissions.count() == 2
