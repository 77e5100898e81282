"""A lead's report flow in a real browser: from a confirmed item with a missing provenance
field to a finished report at the fake CyberTipline."""

import pytest
from playwright.sync_api import expect

from reports.models import ApiCall, AuditEvent, Hold, Report

from .factories import make_confirmed, make_metadata

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_lead_takes_a_confirmed_item_to_a_finished_report(login, lead, reviewer, cybertip):  # noqa: F811
    metadata = make_metadata("crawl/1")
    del metadata["provenance"]["dataset"]["vendor"]
    item = make_confirmed(1, reviewer, metadata=metadata)
    page = login(lead)
    page.goto("/")
    page.click("nav >> text=Reports")
    expect(page.locator("#build")).to_contain_text("Draft reports from 1 confirmed sighting")
    page.click("#build")
    page.click("#reports a")
    expect(page.locator("#state")).to_have_text("Draft")
    expect(page.locator("#checklist")).to_contain_text("✗ dataset.vendor — missing")
    expect(page.locator("#approve")).to_be_disabled()
    expect(page.locator("#report-xml")).to_contain_text("<incidentSummary>")

    page.fill("input[aria-label='Reason dataset.vendor']", "The dataset came without vendor records.")
    page.click("#checklist form.attest button")
    expect(page.locator("#checklist")).to_contain_text("⚠ dataset.vendor — attested not available by lena")
    expect(page.locator("#approve")).to_be_enabled()
    page.click("#approve")

    expect(page.locator("#state")).to_have_text("Finished")
    report = Report.objects.get()
    expect(page.locator("#ncmec-id")).to_have_text(str(report.ncmec_report_id))
    expect(page.locator("#calls tr.call")).to_have_count(5)
    expect(page.locator("#holds")).to_contain_text(f"item {item.pk}")
    assert report.state == Report.State.FINISHED and report.fully_actionable is False
    assert [r.id for r in cybertip.finished_reports()] == [report.ncmec_report_id]
    assert list(ApiCall.objects.values_list("step", flat=True)) == ["status", "submit", "upload", "fileinfo", "finish"]
    assert Hold.objects.filter(item=item, report=report).exists()
    for action in ("report.drafted", "report.attested", "report.approved"):
        assert AuditEvent.objects.filter(action=action, actor_name="lena").exists()
    assert AuditEvent.objects.filter(action="report.finished", actor_kind="system").exists()
