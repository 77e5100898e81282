"""The queue and the review page through the test client: claims, media access, decisions,
exposure. What only a browser shows is in test_review_browser.py."""

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from reports.intake.storage import media_store
from reports.models import AuditEvent, Claim, Decision, ExposureDay, Item, ReviewerSettings, Role, ViewEvent, WellnessPolicy

from .factories import look_via, make_item

pytestmark = pytest.mark.django_db


def claim(client) -> Item | None:
    response = client.post("/claim/")
    assert response.status_code == 302
    if not response.url.startswith("/review/"):
        return None
    return Item.objects.get(pk=int(response.url.split("/")[2]))


def reveal(client, item, mode="hold"):
    return client.post(f"/media/{item.pk}/original/", {"mode": mode})


# --- People and pages --------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["/", "/settings/", "/review/1/", "/media/1/preview/thumb/"])
def test_every_page_requires_login(client, db, url):
    response = client.get(url)
    assert response.status_code == 302 and response.url.startswith("/login/")


def test_media_endpoints_refuse_anonymous_posts(client, db):
    response = client.post("/media/1/original/")
    assert response.status_code in (302, 403)
    assert not ViewEvent.objects.exists()


def test_create_user_makes_a_person_with_a_role(db):
    out = io.StringIO()
    call_command("create_user", "nadia", role="lead", password="a long enough passphrase", stdout=out)
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username="nadia")
    assert list(user.groups.values_list("name", flat=True)) == [Role.LEAD]
    assert user.check_password("a long enough passphrase")
    assert AuditEvent.objects.filter(action="user.created", data__role="lead").exists()


def test_create_user_refuses_a_weak_password(db):
    with pytest.raises(CommandError, match="too short|too common"):
        call_command("create_user", "weak", role="reviewer", password="abc")


def test_home_shows_the_queue_and_todays_exposure(rita, queued_items):
    page = rita.get("/").content.decode()
    assert 'id="waiting-count">3<' in page
    assert "Start reviewing" in page and "Unblurred time" in page


# --- Claiming ----------------------------------------------------------------------------------

def test_claim_takes_the_highest_priority_then_the_oldest_item(rita, reviewer, db):
    make_item(1)
    urgent = make_item(2, priority=1000)  # above the policy's score of the others (461)
    make_item(3)
    assert claim(rita) == urgent
    urgent.refresh_from_db()
    assert (urgent.state, urgent.claimed_by) == (Item.State.CLAIMED, reviewer)
    assert urgent.lease_until > timezone.now() + timedelta(minutes=9)
    started = AuditEvent.objects.get(action="claim.started")
    assert started.item_id == urgent.pk and started.actor_name == "rita"


def test_a_reviewer_holding_an_item_gets_the_same_item_again(rita, queued_items):
    first = claim(rita)
    assert claim(rita) == first
    assert Claim.objects.filter(end="").count() == 1


def test_two_reviewers_never_hold_the_same_item(client, reviewer, second_reviewer, db):
    make_item(1)
    client.force_login(reviewer)
    assert claim(client) is not None
    client.force_login(second_reviewer)
    assert claim(client) is None
    assert Claim.objects.count() == 1


def test_an_expired_lease_returns_the_item_to_the_queue(client, reviewer, second_reviewer, db):
    item = make_item(1)
    client.force_login(reviewer)
    claim(client)
    Item.objects.filter(pk=item.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    client.force_login(second_reviewer)
    assert claim(client) == item
    assert Claim.objects.get(user=reviewer).end == Claim.End.EXPIRED
    assert AuditEvent.objects.filter(action="claim.expired", item_id=item.pk).exists()
    # The first reviewer's page has lost the item.
    client.force_login(reviewer)
    assert client.get(f"/review/{item.pk}/").status_code == 404


def test_a_reviewer_at_the_daily_cap_cannot_claim(rita, reviewer, queued_items):
    ExposureDay.objects.create(user=reviewer, day=timezone.localdate(), unblurred_seconds=WellnessPolicy.current().daily_cap_seconds)
    response = rita.post("/claim/", follow=True)
    assert "today's exposure limit" in response.content.decode()
    assert not Claim.objects.exists()


def test_heartbeat_renews_the_lease_and_counts_active_time(rita, reviewer, queued_items):
    item = claim(rita)
    Item.objects.filter(pk=item.pk).update(lease_until=timezone.now() + timedelta(seconds=30))
    ExposureDay.objects.filter(user=reviewer).update(last_active_at=timezone.now() - timedelta(seconds=20))
    body = rita.post(f"/review/{item.pk}/heartbeat/").json()
    assert body["held"] is True and body["break_due"] is False
    item.refresh_from_db()
    assert item.lease_until > timezone.now() + timedelta(minutes=9)
    assert 19 <= ExposureDay.objects.get(user=reviewer).active_seconds <= 25


def test_heartbeat_says_when_the_lease_is_gone(rita, queued_items):
    assert rita.post(f"/review/{queued_items[0].pk}/heartbeat/").json()["held"] is False


def test_a_break_is_offered_after_fifty_active_minutes(rita, reviewer, queued_items):
    ExposureDay.objects.create(user=reviewer, day=timezone.localdate(), active_since_break_seconds=50 * 60)
    assert "I took a break" in rita.get("/").content.decode()
    rita.post("/break/", {"next": "https://elsewhere.example/"})
    assert ExposureDay.objects.get(user=reviewer).active_since_break_seconds == 0
    assert AuditEvent.objects.filter(action="wellness.break_taken").exists()
    assert "I took a break" not in rita.get("/").content.decode()


# --- What reaches the browser ------------------------------------------------------------------

def test_review_page_shows_the_blurred_preview_the_label_and_the_provenance(rita, queued_items):
    item = claim(rita)
    page = rita.get(f"/review/{item.pk}/").content.decode()
    assert f"/media/{item.pk}/preview/inspect-3/" in page
    assert f"/media/{item.pk}/original/" in page  # as the reveal endpoint, not as an image source
    assert 'src="/media/' in page and f'src="/media/{item.pk}/original' not in page
    assert "NCMEC list · PDQ distance 12 · A1" in page
    assert "https://host.example/gallery/7" in page and "web-images-v3" in page


def test_preview_is_served_to_the_holder_uncached_and_audited(rita, queued_items):
    item = claim(rita)
    response = rita.get(f"/media/{item.pk}/preview/inspect-3/")
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert "no-store" in response["Cache-Control"]
    assert response.content == media_store().get_part(item.previews["inspect-3"], "inspect-3")
    assert AuditEvent.objects.filter(action="media.preview", item_id=item.pk).exists()


def test_each_preview_of_the_set_is_served_from_its_one_file_and_older_single_files_still_are(rita, queued_items):
    from PIL import Image

    item = claim(rita)
    assert len(set(item.previews.values())) == 1  # thumbnail and three inspect views: one file
    sizes = {}
    for kind in ("thumb", "inspect-2", "inspect-3"):  # inspect-1 is below the default minimum blur
        response = rita.get(f"/media/{item.pk}/preview/{kind}/")
        assert response.status_code == 200
        sizes[kind] = Image.open(io.BytesIO(response.content)).size  # a whole JPEG, not the set
    assert sizes["thumb"] == (256, 192) and sizes["inspect-2"] == sizes["inspect-3"] == (320, 240)  # never enlarged
    assert rita.get(f"/media/{item.pk}/preview/inspect-1/").status_code == 403
    shown = rita.get(f"/media/{item.pk}/preview/inspect-2/").content
    # An item whose previews were stored one file each (before sets) is served the same.
    store = media_store()
    single = {kind: store.put(store.get_part(name, kind)) for kind, name in item.previews.items()}
    Item.objects.filter(pk=item.pk).update(previews=single)
    assert rita.get(f"/media/{item.pk}/preview/inspect-2/").content == shown
    assert AuditEvent.objects.filter(action="media.preview", item_id=item.pk).count() == 5


def test_original_is_served_only_by_post_to_the_holder_and_recorded(rita, reviewer, queued_items):
    item = claim(rita)
    assert rita.get(f"/media/{item.pk}/original/").status_code == 405
    response = reveal(rita, item)
    assert response.status_code == 200
    assert response.content == media_store().get(item.original_blob)
    assert response["Cache-Control"] == "no-store, private"
    view = ViewEvent.objects.get()
    assert (view.item, view.user, view.mode, view.claim.item) == (item, reviewer, "hold", item)
    assert response["X-View-Id"] == str(view.pk)
    assert AuditEvent.objects.filter(action="media.original", item_id=item.pk, actor_name="rita").exists()
    assert ExposureDay.objects.get(user=reviewer).reveals == 1


def test_media_of_an_item_not_held_is_404_and_the_attempt_is_audited(client, reviewer, second_reviewer, queued_items):
    client.force_login(reviewer)
    item = claim(client)
    client.force_login(second_reviewer)
    assert reveal(client, item).status_code == 404
    assert client.get(f"/media/{item.pk}/preview/thumb/").status_code == 404
    assert client.get(f"/review/{item.pk}/").status_code == 404
    assert reveal(client, Item(pk=999999)).status_code == 404  # missing answers the same
    assert not ViewEvent.objects.exists()
    assert AuditEvent.objects.filter(action="media.denied", actor_name="sam").count() == 3


def test_a_lead_may_see_any_item(client, lead, queued_items):
    client.force_login(lead)
    item = queued_items[0]
    assert client.get(f"/review/{item.pk}/").status_code == 200
    assert reveal(client, item).status_code == 200
    assert ViewEvent.objects.get().claim is None


def test_reported_reveal_time_is_clamped_by_the_server_and_counted_once(rita, reviewer, queued_items):
    item = claim(rita)
    view_id = reveal(rita, item)["X-View-Id"]
    first = rita.post(f"/views/{view_id}/", json.dumps({"seconds": 500}), content_type="application/json").json()
    assert first["counted"] <= 3.0  # the original left the server moments ago
    again = rita.post(f"/views/{view_id}/", json.dumps({"seconds": 2}), content_type="application/json").json()
    assert again["counted"] == first["counted"]
    assert ExposureDay.objects.get(user=reviewer).unblurred_seconds == pytest.approx(first["counted"])
    assert AuditEvent.objects.filter(action="media.view_ended").count() == 1


def test_reveal_time_reports_are_validated_and_owned(client, reviewer, second_reviewer, queued_items):
    client.force_login(reviewer)
    item = claim(client)
    view_id = reveal(client, item)["X-View-Id"]
    bad = client.post(f"/views/{view_id}/", "not json", content_type="application/json")
    assert bad.status_code == 400 and "seconds" in bad.json()["errors"]
    client.force_login(second_reviewer)
    assert client.post(f"/views/{view_id}/", json.dumps({"seconds": 1}), content_type="application/json").status_code == 404
    assert ViewEvent.objects.get().reported is False


# --- Decisions ---------------------------------------------------------------------------------

def decide(client, item, **fields):
    return client.post(f"/review/{item.pk}/decide/", fields)


def test_confirming_needs_a_recorded_reveal(rita, queued_items):
    item = claim(rita)
    response = decide(rita, item, verdict="confirmed", classification="A1")
    assert response.status_code == 400
    assert "Reveal the file before confirming" in response.content.decode()
    assert not Decision.objects.exists()
    assert Item.objects.get(pk=item.pk).state == Item.State.CLAIMED


def test_a_confirmation_is_recorded_with_the_view_and_audited(rita, reviewer, queued_items, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    item = claim(rita)
    look_via(rita, item.pk)  # revealed, and the page reported it painted
    response = decide(rita, item, verdict="confirmed", classification="B2", annotations=["generativeAi", "viral"])
    assert response.status_code == 302 and response.url.startswith("/review/")  # straight to the next item
    decision = Decision.objects.get()
    assert (decision.verdict, decision.classification, decision.annotations) == ("confirmed", "B2", ["generativeAi", "viral"])
    assert decision.viewed_unblurred is True and decision.reviewer == reviewer
    item.refresh_from_db()
    assert (item.state, item.verdict, item.claimed_by) == (Item.State.DECIDED, "confirmed", None)
    assert Claim.objects.get(item=item).end == Claim.End.DECIDED
    recorded = AuditEvent.objects.get(action="decision.recorded")
    assert recorded.data["verdict"] == "confirmed" and recorded.data["viewed_unblurred"] is True
    assert AuditEvent.objects.filter(action="claim.decided", item_id=item.pk).exists()
    assert ExposureDay.objects.get(user=reviewer).items == 1


def test_an_unreported_reveal_is_counted_when_the_claim_ends(rita, reviewer, queued_items, settings, monkeypatch):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    item = claim(rita)
    reveal(rita, item)
    # Seven seconds later (a reveal's start is append-only: the clock moves, not the row).
    monkeypatch.setattr(timezone, "now", lambda now=timezone.now: now() + timedelta(seconds=7))
    decide(rita, item, verdict="not_csam", reason="benign")
    view = ViewEvent.objects.get()
    assert view.reported and 7 <= view.seconds <= 10 and not view.painted
    assert ExposureDay.objects.get(user=reviewer).unblurred_seconds == pytest.approx(view.seconds)


@pytest.mark.parametrize("fields, error", [
    ({"verdict": "not_csam"}, "Say why"),
    ({"verdict": "escalated", "note": "  "}, "Say what you are unsure about"),
    ({"verdict": "confirmed"}, "needs a classification"),
    ({"verdict": "maybe"}, "Select a valid choice"),
    ({"verdict": "confirmed", "classification": "A1", "annotations": ["sparkly"]}, "Select a valid choice"),
])
def test_incomplete_decisions_are_refused(rita, queued_items, fields, error):
    item = claim(rita)
    reveal(rita, item)
    response = decide(rita, item, **fields)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Decision.objects.exists()


def test_not_csam_and_escalation_move_the_item_on(rita, queued_items, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    first = claim(rita)
    decide(rita, first, verdict="not_csam", reason="benign")
    second = claim(rita)
    decide(rita, second, verdict="escalated", note="Age unclear; please look.")
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.state, first.verdict) == (Item.State.DECIDED, "not_csam")
    assert (second.state, second.verdict) == (Item.State.ESCALATED, "")
    assert Decision.objects.get(item=second).note == "Age unclear; please look."


def test_a_sampled_decision_goes_to_qa(rita, queued_items, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 100
    item = claim(rita)
    decide(rita, item, verdict="not_csam", reason="adult")
    item.refresh_from_db()
    assert item.state == Item.State.QA


def test_deciding_an_item_not_held_is_404(client, reviewer, second_reviewer, queued_items):
    client.force_login(reviewer)
    item = claim(client)
    client.force_login(second_reviewer)
    assert decide(client, item, verdict="not_csam", reason="benign").status_code == 404
    assert client.post(f"/review/{item.pk}/skip/").status_code == 404
    assert not Decision.objects.exists()


def test_skipping_returns_the_item_and_offers_another(rita, queued_items):
    first = claim(rita)
    response = rita.post(f"/review/{first.pk}/skip/")
    first.refresh_from_db()
    assert first.state == Item.State.QUEUED
    assert Claim.objects.get(item=first).end == Claim.End.SKIPPED
    assert response.url.startswith("/review/") and response.url != f"/review/{first.pk}/"
    assert not Decision.objects.exists()


# --- Personal settings -------------------------------------------------------------------------

def test_settings_within_the_limits_are_saved_and_audited(rita, reviewer):
    response = rita.post("/settings/", {"blur": 2, "greyscale": "on", "reveal_mode": "click", "reveal_seconds": 3, "size": "large"})
    assert response.status_code == 302
    own = ReviewerSettings.objects.get(user=reviewer)
    assert (own.blur, own.reveal_mode, own.reveal_seconds, own.size) == (2, "click", 3, "large")
    assert AuditEvent.objects.get(action="settings.changed").data["new"]["reveal_mode"] == "click"


@pytest.mark.parametrize("change, message", [
    ({"blur": 1}, "The lightest blur allowed"),
    ({"reveal_seconds": 60}, "Between 1 and 10 seconds"),
    ({"reveal_mode": "hover"}, "Select a valid choice"),
])
def test_settings_outside_the_limits_are_refused(rita, reviewer, change, message):
    fields = {"blur": 3, "greyscale": "on", "reveal_mode": "hold", "reveal_seconds": 4, "size": "medium", **change}
    response = rita.post("/settings/", fields)
    assert response.status_code == 400 and message in response.content.decode()
    assert not AuditEvent.objects.filter(action="settings.changed").exists()


def test_colour_can_be_forbidden_by_the_admin(rita, reviewer):
    WellnessPolicy.objects.update_or_create(pk=1, defaults={"allow_colour": False})
    response = rita.post("/settings/", {"blur": 3, "reveal_mode": "hold", "reveal_seconds": 4, "size": "medium"})
    assert response.status_code == 400 and "Colour is turned off" in response.content.decode()
