"""A cluster in the browser (Chromium, Playwright): five files, one task, by keyboard."""

import re

import pytest
from playwright.sync_api import expect

from reports.models import AuditEvent, Decision, Item, ViewEvent

from .factories import make_item, make_variant
from .support.browser import axe_serious, start_review

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SEED = 7
NEAR = [("reencode", 40), ("resize", 0.75), ("crop", 0.005), ("brightness", 0.1)]


def test_a_cluster_of_five_reviewed_by_keyboard_with_one_reveal_and_two_members_unticked(login, reviewer, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    rep = make_item(SEED)
    members = [make_variant(SEED, kind, amount=amount) for kind, amount in NEAR]
    assert {m.cluster_of_id for m in members} == {rep.pk}
    members.sort(key=lambda m: (m.cluster_distance, m.pk))  # the strip's order: nearest first
    page = login(reviewer)
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    assert start_review(page) == rep.pk
    expect(page.locator("#cluster-title")).to_have_text("Cluster: this file and 4 near-duplicates")
    strip = page.locator("#cluster-strip .member")
    expect(strip).to_have_count(5)
    for m in members:  # blurred thumbnails with their distances, ticked by default
        expect(page.locator(f"#member-{m.pk} img")).to_have_js_property("complete", True)
        expect(page.locator(f"#member-{m.pk}")).to_contain_text(f"distance {m.cluster_distance}")
        expect(page.locator(f"#member-{m.pk} .member-tick")).to_be_checked()
    assert not [url for url in requests if "/original/" in url]
    assert axe_serious(page) == []

    # One reveal, of the representative (hold Space).
    page.keyboard.down(" ")
    expect(page.locator("#original")).to_be_visible(timeout=5000)
    page.wait_for_timeout(500)
    page.keyboard.up(" ")
    expect(page.locator("#original")).to_be_hidden()

    # Step to the third and fourth members and untick them: "." moves, "x" unticks.
    for _ in range(3):
        page.keyboard.press(".")
    expect(page.locator("#cluster-showing")).to_contain_text("near-duplicate 3")
    expect(page.locator("#media")).to_have_attribute("src", re.compile(rf"/media/{members[2].pk}/preview/inspect-\d/$"))
    page.keyboard.press("x")
    page.keyboard.press(".")
    page.keyboard.press("x")
    expect(page.locator(f"#member-{members[2].pk} .member-tick")).not_to_be_checked()
    expect(page.locator(f"#member-{members[3].pk} .member-tick")).not_to_be_checked()
    expect(page.locator(f"#member-{members[0].pk} .member-tick")).to_be_checked()

    page.keyboard.press("1")  # confirm as A1
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/review/\d+/$|/$"))
    expect(page.locator(".flash")).to_contain_text("Applied to 2 near-duplicates too.")

    assert ViewEvent.objects.filter(painted=True).count() == 1  # one look for three decisions
    cluster_decision = Decision.objects.get(item=rep)
    assert cluster_decision.verdict == "confirmed" and cluster_decision.viewed_unblurred
    decided = Decision.objects.filter(cluster_decision=cluster_decision)
    assert sorted(decided.values_list("item_id", flat=True)) == sorted([members[0].pk, members[1].pk])
    assert not decided.filter(viewed_unblurred=True).exists()
    for m in members[2:]:
        m.refresh_from_db()
        assert m.cluster_of_id is None and m.state in (Item.State.QUEUED, Item.State.CLAIMED)
        assert not Decision.objects.filter(item=m).exists()
    assert AuditEvent.objects.filter(action="item.unclustered").count() == 2
    assert len([url for url in requests if "/original/" in url]) == 1


def test_a_view_task_reveals_its_files_one_by_one(login, reviewer, lead, settings):
    from reports.models import ViewTask
    from reports.reporting.drafting import report_draft_build

    from .factories import make_confirmed

    item = make_confirmed(1, reviewer, reveal=False)  # confirmed without a look (a setting allowed it)
    (report,) = report_draft_build()
    task = ViewTask.objects.create(report=report, items=[item.pk], requested_by=lead, created_at=item.decided_at)
    page = login(reviewer)
    page.goto("/")
    page.click("#view-task-start")
    page.wait_for_url(f"**/view-tasks/{task.pk}/")
    expect(page.locator("#media")).to_have_js_property("complete", True)
    page.keyboard.down(" ")
    expect(page.locator("#original")).to_be_visible(timeout=5000)
    page.wait_for_timeout(500)
    page.keyboard.up(" ")
    expect(page.locator("#original")).to_be_hidden()
    page.keyboard.press("x")
    page.keyboard.press("Enter")
    page.wait_for_url("**/")
    expect(page.locator(".flash")).to_contain_text("Viewed and confirmed 1 file")
    assert Decision.objects.filter(item=item, viewed_unblurred=True, supersedes__isnull=False).count() == 1
