"""Reviewer protection that the server enforces, whatever the page does: a view is a painted
view, reveal reports count once, lost reports are not over-counted, the cap covers reveals,
and the admin's blur and colour limits hold at the media endpoints."""

import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone
from PIL import Image

from reports.cybertip import xml
from reports.models import AuditEvent, Decision, ExposureDay, Item, ViewEvent, WellnessPolicy
from reports.reporting import drafting
from reports.review import decisions, queue

from .factories import look, look_via, make_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(reviewer, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    make_item(1, size=(320, 240))
    return queue.item_claim(user=reviewer)


def reveal(client, item_id):
    response = client.post(f"/media/{item_id}/original/", {"mode": "hold"})
    return response, response.get("X-View-Id")


def report(client, view_id, **body):
    return client.post(f"/views/{view_id}/", json.dumps(body), content_type="application/json")


def confirm(client, item_id):
    return client.post(f"/review/{item_id}/decide/", {"verdict": "confirmed", "classification": "A1"})


# --- A view is a painted view -------------------------------------------------------------------

def test_a_reveal_released_before_it_was_painted_does_not_allow_a_confirmation(rita, held):
    _, view_id = reveal(rita, held.item_id)
    assert report(rita, view_id, seconds=0.0, painted=False).json() == {"counted": 0.0, "painted": False}
    response = confirm(rita, held.item_id)
    assert response.status_code == 400
    assert "Reveal the file before confirming it" in response.content.decode()
    assert not Decision.objects.exists()


def test_a_painted_glimpse_shorter_than_the_minimum_is_not_a_view(rita, held, settings):
    settings.TSREVIEW_MIN_VIEW_SECONDS = 0.3
    _, view_id = reveal(rita, held.item_id)
    assert report(rita, view_id, seconds=0.2, painted=True).json()["painted"] is False
    assert confirm(rita, held.item_id).status_code == 400
    event = AuditEvent.objects.get(action="media.view_ended")
    assert event.data == {"reported": 0.2, "counted": 0.2, "painted": False}


def test_a_painted_view_allows_the_confirmation(rita, held):
    _, view_id = reveal(rita, held.item_id)
    assert report(rita, view_id, seconds=0.8, painted=True).json() == {"counted": 0.8, "painted": True}
    assert confirm(rita, held.item_id).status_code == 302
    assert Decision.objects.get().viewed_unblurred is True


def test_the_server_clamps_a_painted_length_by_its_own_clock(rita, held, settings):
    """A page claiming a long painted look straight after the reveal is held to the time the
    server has seen pass (plus slack for clocks); a claim of 0.35 s inside that stands."""
    settings.TSREVIEW_MIN_VIEW_SECONDS = 5
    _, view_id = reveal(rita, held.item_id)
    answer = report(rita, view_id, seconds=50, painted=True).json()
    assert answer["counted"] < 5 and answer["painted"] is False


def test_a_zero_second_reveal_is_reported_to_ncmec_as_not_viewed(reviewer, settings, reporter_settings):
    """With the reveal rule turned off, a confirmation after a reveal released before it was
    painted is allowed, and the report says the file was not viewed."""
    settings.TSREVIEW_QA_SAMPLE_PERCENT, settings.TSREVIEW_REQUIRE_VIEW_TO_CONFIRM = 0, False
    make_item(1)
    claim = queue.item_claim(user=reviewer)
    look(reviewer, claim.item, claim, seconds=0.0, painted=False)
    decision = decisions.decision_record(user=reviewer, claim=claim, verdict="confirmed", classification="A1")
    assert decision.viewed_unblurred is False
    report_file = drafting.report_draft_build(actor=None)[0].files.get()
    assert xml.file_details_document(report_file).findtext("fileViewedByEsp") == "false"


def test_a_report_sent_twice_counts_once(rita, held, reviewer):
    _, view_id = reveal(rita, held.item_id)
    first = report(rita, view_id, seconds=1.5, painted=True).json()
    again = report(rita, view_id, seconds=9.0, painted=True).json()
    assert first == again == {"counted": 1.5, "painted": True}
    assert ExposureDay.objects.get(user=reviewer).unblurred_seconds == 1.5
    assert AuditEvent.objects.filter(action="media.view_ended").count() == 1


@pytest.mark.parametrize("body", [{"seconds": 1, "painted": "yes"}, {"seconds": "NaN"}, {"seconds": [1]}])
def test_a_malformed_reveal_report_is_refused_and_changes_nothing(rita, held, body):
    _, view_id = reveal(rita, held.item_id)
    response = report(rita, view_id, **body)
    assert response.status_code == 400 and "seconds" in response.json()["errors"]
    assert ViewEvent.objects.get(pk=view_id).reported is False


def test_a_reveal_whose_reports_were_all_lost_counts_at_most_the_short_limit_and_is_not_a_view(
        rita, held, reviewer, settings, monkeypatch):
    settings.TSREVIEW_UNREPORTED_VIEW_SECONDS = 3
    _, view_id = reveal(rita, held.item_id)
    # A minute later (a reveal's start is append-only: the clock moves, not the row).
    monkeypatch.setattr(timezone, "now", lambda now=timezone.now: now() + timedelta(seconds=60))
    assert rita.post(f"/review/{held.item_id}/skip/").status_code == 302  # the claim ends
    view = ViewEvent.objects.get(pk=view_id)
    assert (view.reported, view.seconds, view.painted) == (True, 3.0, False)
    assert ExposureDay.objects.get(user=reviewer).unblurred_seconds == 3.0


# --- The cap covers reveals -----------------------------------------------------------------------

def test_at_the_cap_the_item_already_held_cannot_be_revealed(rita, held, reviewer):
    WellnessPolicy.current()
    WellnessPolicy.objects.update(daily_cap_seconds=60)
    ExposureDay.objects.filter(user=reviewer).update(unblurred_seconds=60)
    response, view_id = reveal(rita, held.item_id)
    assert response.status_code == 403
    assert response.json() == {"errors": {"cap": [queue.CapReached.message]}}
    assert view_id is None and not ViewEvent.objects.exists()
    assert not AuditEvent.objects.filter(action="media.original").exists()


# --- The admin's limits, held by the server -------------------------------------------------------

def test_a_preview_lighter_than_the_minimum_blur_is_refused(rita, held):
    WellnessPolicy.current()
    WellnessPolicy.objects.update(min_blur=2)
    assert rita.get(f"/media/{held.item_id}/preview/inspect-1/").status_code == 403
    assert rita.get(f"/media/{held.item_id}/preview/inspect-2/").status_code == 200
    assert rita.get(f"/media/{held.item_id}/preview/thumb/").status_code == 200


def test_where_colour_is_not_allowed_a_reveal_sends_a_greyscale_rendering_at_natural_size(rita, held):
    WellnessPolicy.current()
    WellnessPolicy.objects.update(allow_colour=False)
    response, view_id = reveal(rita, held.item_id)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.mode == "L" and image.size == (320, 240)
    assert ViewEvent.objects.get(pk=view_id).rendering == "greyscale"
    assert AuditEvent.objects.get(action="media.original").data["rendering"] == "greyscale"


def test_where_colour_is_allowed_the_reveal_sends_the_original_bytes(rita, held):
    response, view_id = reveal(rita, held.item_id)
    assert response["Content-Type"] == Item.objects.get(pk=held.item_id).mime_type
    assert Image.open(io.BytesIO(response.content)).mode == "RGB"
    assert AuditEvent.objects.get(action="media.original").data["rendering"] == "original"


# --- Smaller things a lead sees --------------------------------------------------------------------

def test_the_lead_item_page_shows_provenance_as_fields_not_a_raw_dict(lena, reviewer, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    item = make_item(1)
    claim = queue.item_claim(user=reviewer)
    look(reviewer, claim.item, claim)
    page = lena.get(f"/lead/items/{item.pk}/").content.decode()
    assert "{&#x27;source_type&#x27;" not in page and "{'source_type'" not in page
    assert "<dt>Dataset</dt>" in page and "web-images-v3" in page


def test_look_via_the_pages_is_a_painted_view(rita, held, reviewer):
    look_via(rita, held.item_id)
    assert ViewEvent.objects.get().painted is True


def test_a_reveal_report_carried_in_the_decision_form_counts_before_the_decision(rita, held):
    """The page puts its last reveal report into the form too: a report still in flight on a
    slow network cannot lose the race with the decision."""
    _, view_id = reveal(rita, held.item_id)
    carried = json.dumps([{"view": int(view_id), "seconds": 0.9, "painted": True}, {"view": 999999, "seconds": 5}, "junk"])
    response = rita.post(f"/review/{held.item_id}/decide/",
                         {"verdict": "confirmed", "classification": "A1", "view_reports": carried})
    assert response.status_code == 302
    assert Decision.objects.get().viewed_unblurred is True
    assert ViewEvent.objects.get(pk=view_id).seconds == 0.9
    assert report(rita, view_id, seconds=3, painted=True).json()["counted"] == 0.9  # the later report changes nothing
