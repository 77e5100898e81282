"""What only a browser shows: the review page in Debian's Chromium, driven by Playwright."""

import re

import pytest
from playwright.sync_api import expect

from reports.models import AuditEvent, Decision, Item, ReviewerSettings, ViewEvent

from .factories import make_item
from .support.browser import start_review

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def media_src(page) -> str:
    return page.get_attribute("#media", "src")


def wait_revealed(page):
    # The original is drawn on its own canvas over the preview, which stays loaded underneath.
    expect(page.locator("#original")).to_be_visible(timeout=5000)


def wait_blurred(page, timeout=5000):
    expect(page.locator("#original")).to_be_hidden(timeout=timeout)
    expect(page.locator("#media")).to_have_attribute("src", re.compile(r"/preview/inspect-\d/$"))


def wait_for_db(predicate, page, seconds=5):
    for _ in range(int(seconds * 10)):
        if predicate():
            return True
        page.wait_for_timeout(100)
    return False


@pytest.fixture
def items(transactional_db):
    return [make_item(seed) for seed in range(3)]


def test_before_a_reveal_only_the_blurred_preview_reaches_the_browser(login, reviewer, items):
    page = login(reviewer)
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    item_id = start_review(page)
    assert f"/media/{item_id}/preview/inspect-3/" in media_src(page)
    assert page.inner_text("#badge") == "Blurred"
    assert page.evaluate("document.getElementById('media').naturalHeight") <= 600
    page.wait_for_timeout(500)  # let any late request show itself
    assert not [url for url in requests if "/original/" in url]
    assert not ViewEvent.objects.exists()


def test_hold_reveals_and_release_re_blurs(login, reviewer, items):
    page = login(reviewer)
    item_id = start_review(page)
    page.hover("#reveal")
    page.mouse.down()
    wait_revealed(page)
    assert page.inner_text("#badge") == "Revealed"
    page.wait_for_timeout(400)
    page.mouse.up()
    wait_blurred(page)
    assert wait_for_db(lambda: ViewEvent.objects.filter(reported=True).exists(), page)
    view = ViewEvent.objects.get()
    assert view.item_id == item_id and view.mode == "hold"
    assert 0.3 <= view.seconds <= 3


def test_click_mode_re_blurs_by_itself_after_the_timeout(login, reviewer, items):
    ReviewerSettings.objects.create(user=reviewer, reveal_mode="click", reveal_seconds=1)
    page = login(reviewer)
    start_review(page)
    assert "Reveal for 1 s" in page.inner_text("#reveal")
    page.click("#reveal")
    wait_revealed(page)
    wait_blurred(page, timeout=4000)
    assert wait_for_db(lambda: ViewEvent.objects.filter(reported=True).exists(), page)
    assert 0.8 <= ViewEvent.objects.get().seconds <= 2.5


@pytest.mark.parametrize("hide", [
    "Object.defineProperty(document, 'hidden', {value: true, configurable: true});"
    "document.dispatchEvent(new Event('visibilitychange'))",
    "window.dispatchEvent(new Event('blur'))",
], ids=["tab-hidden", "window-blur"])
def test_hiding_the_tab_or_leaving_the_window_re_blurs(login, reviewer, items, hide):
    ReviewerSettings.objects.create(user=reviewer, reveal_mode="click", reveal_seconds=10)
    page = login(reviewer)
    start_review(page)
    page.click("#reveal")
    wait_revealed(page)
    page.evaluate(hide)
    wait_blurred(page, timeout=1000)  # well before the 10-second timeout
    assert page.inner_text("#badge") == "Blurred"


def test_a_decision_made_by_keyboard_is_recorded_with_its_audit_event(login, reviewer, items, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    page = login(reviewer)
    item_id = start_review(page)
    page.keyboard.press("?")
    assert page.is_visible("#keys") and "Confirm as A1, A2, B1, B2" in page.inner_text("#keys")
    page.keyboard.press("Escape")
    assert not page.is_visible("#keys")
    page.keyboard.down(" ")
    wait_revealed(page)
    page.wait_for_timeout(400)  # a look of at least the 300 ms a view needs
    page.keyboard.up(" ")
    wait_blurred(page)
    page.keyboard.press("2")
    page.keyboard.press("g")
    assert page.is_checked("#v-confirmed") and page.is_checked("#a-generativeAi")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: f"/review/{item_id}/" not in url)
    decision = Decision.objects.get()
    assert (decision.item_id, decision.verdict, decision.classification) == (item_id, "confirmed", "A2")
    assert decision.annotations == ["generativeAi"] and decision.viewed_unblurred
    assert AuditEvent.objects.filter(action="decision.recorded", item_id=item_id, actor_name=reviewer.username).exists()
    assert Item.objects.get(pk=item_id).state == Item.State.DECIDED


def test_skip_by_keyboard_moves_to_another_item(login, reviewer, items):
    page = login(reviewer)
    first = start_review(page)
    page.keyboard.press("s")
    page.wait_for_url(lambda url: f"/review/{first}/" not in url)
    assert Item.objects.get(pk=first).state == Item.State.QUEUED


def test_two_reviewers_in_two_browsers_never_get_the_same_item(login, reviewer, second_reviewer, items):
    rita = login(reviewer)
    sam = login(second_reviewer)
    rita.goto("/")
    sam.goto("/")
    with rita.expect_navigation(), sam.expect_navigation():
        rita.click("#start", no_wait_after=True)
        sam.click("#start", no_wait_after=True)
    ids = {int(page.url.rstrip("/").split("/")[-1]) for page in (rita, sam)}
    assert len(ids) == 2
    assert set(Item.objects.filter(state="claimed").values_list("claimed_by__username", flat=True)) == {"rita", "sam"}


def test_a_reviewer_cannot_fetch_an_original_they_do_not_hold(login, reviewer, second_reviewer, items):
    rita = login(reviewer)
    held = start_review(rita)
    sam = login(second_reviewer)
    start_review(sam)
    status = sam.evaluate("""(url) => fetch(url, {method: "POST", credentials: "same-origin",
        headers: {"X-CSRFToken": document.querySelector('meta[name=csrf-token]').content}}).then(r => r.status)""",
                          f"/media/{held}/original/")
    assert status == 404
    assert not ViewEvent.objects.exists()
    assert AuditEvent.objects.filter(action="media.denied", actor_name="sam").exists()


def test_an_idle_reviewer_stops_renewing_the_lease_and_an_active_one_resumes(login, reviewer, items):
    page = login(reviewer)
    page.clock.install()
    beats = []
    page.on("request", lambda request: beats.append(request.url) if "/heartbeat/" in request.url else None)
    start_review(page)
    page.clock.run_for(100_000)  # within two minutes of the last input: a heartbeat every 20 s
    page.wait_for_timeout(300)
    active = len(beats)
    assert active >= 5
    page.clock.run_for(200_000)  # no key, click or move: the page falls silent after two minutes
    page.wait_for_timeout(300)
    silent = len(beats)
    assert silent <= active + 1
    page.clock.run_for(100_000)
    page.wait_for_timeout(300)
    assert len(beats) == silent
    page.mouse.move(40, 40)
    page.clock.run_for(21_000)
    page.wait_for_timeout(300)
    assert len(beats) == silent + 1
