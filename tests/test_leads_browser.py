"""A lead's flow in a real browser: filter the decision log, open a timeline, overturn."""

import pytest
from playwright.sync_api import expect

from reports.models import AuditEvent, Decision, Item

from .factories import decide_next, make_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_lead_filters_the_log_opens_a_timeline_and_overturns(login, lead, reviewer, second_reviewer, settings):  # noqa: F811
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    make_item(1), make_item(2)
    wrong = decide_next(reviewer, classification="A1")
    decide_next(second_reviewer, "not_csam", reason="adult")
    page = login(lead)
    page.goto("/lead/decisions/")
    expect(page.locator("#decisions tbody tr")).to_have_count(2)
    page.select_option("#id_reviewer", label="rita")
    page.click("#filters button[type=submit]")
    expect(page.locator("#decisions tbody tr")).to_have_count(1)
    expect(page.locator("#count")).to_have_text("1 decision")
    page.click(f"#decisions a[href='/lead/items/{wrong.item_id}/']")
    expect(page.locator("#timeline")).to_contain_text("rita decided: confirmed A1 · viewed unblurred")
    expect(page.locator("#timeline li").first).to_contain_text("item.created")
    page.check("#overturn input[name=verdict][value=not_csam]")
    page.check("#overturn input[name=reason][value=benign]")
    page.fill("#overturn textarea[name=note]", "A benign family photo; the hash list entry is wrong.")
    page.click("#overturn-submit")
    expect(page.locator("#item-state")).to_have_text("decided · not_csam")
    expect(page.locator("#timeline")).to_contain_text("lena overturned confirmed → not_csam benign")
    expect(page.locator("#item-decisions tr.superseded")).to_have_count(1)
    assert Decision.objects.get(supersedes=wrong).note.startswith("A benign family photo")
    assert Item.objects.get(pk=wrong.item_id).verdict == "not_csam"
    assert AuditEvent.objects.filter(action="decision.overturned", actor_name="lena").exists()
