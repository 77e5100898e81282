"""What only a browser shows: the calibration chart drawn (under the CSP, accessible), and the
quarantine label on a reviewer's page while the file is still blurred."""

import pytest
from django.test import override_settings
from playwright.sync_api import expect

from reports.models import EntryQuarantine

from .factories import decide_next, make_item, make_metadata
from .support.browser import axe_serious, start_review
from .test_calibration import make_decisions

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_calibration_chart_is_drawn_under_the_csp(login, lead, reviewer):
    make_decisions(reviewer)
    page = login(lead)
    messages = []
    page.on("console", lambda m: messages.append(m.text) if m.type == "error" else None)
    page.goto("/lead/calibration/")
    chart = page.locator("svg.chart").last
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box["width"] > 300 and box["height"] > 100
    expect(chart.locator("circle")).to_have_count(4)  # NCMEC PDQ (after IWF): 4 buckets with decisions
    red = page.locator("svg.chart g.below circle").first.evaluate("c => getComputedStyle(c).fill")
    assert red == "rgb(197, 48, 48)"  # app.css styles it: the stylesheet applies, no inline style needed
    expect(page.locator(".suggested")).to_have_text("suggested threshold: distance under 4")
    assert not [m for m in messages if "Content Security Policy" in m], messages
    assert axe_serious(page) == []


def test_a_reviewer_reads_the_quarantine_label_while_the_file_is_blurred(login, reviewer, second_reviewer):
    match = {"hash_type": "pdq", "hash_value": "f8" * 32, "list": "NCMEC", "list_entry_id": "bad-9", "distance": 20}
    for seed in range(1, 5):
        make_item(seed, metadata=make_metadata(f"qb/{seed}", matches=[match]))
    with override_settings(TSREVIEW_QA_SAMPLE_PERCENT=0):
        for _ in range(3):
            decide_next(second_reviewer, "not_csam", reason="not_a_match")
    assert EntryQuarantine.objects.filter(list_entry_id="bad-9").exists()
    page = login(reviewer)
    start_review(page)
    expect(page.locator("#quarantined")).to_be_visible()
    expect(page.locator("#quarantined")).to_contain_text("entry quarantined: 3 false matches")
    expect(page.locator("#badge")).to_have_text("Blurred")
    expect(page.locator("#original")).to_be_hidden()
