"""A video reviewed in Chromium, by keyboard, frame first: before a reveal no response carries
the video or an unblurred frame; a reveal shows the chosen frame's still; the decision records
the painted look."""

import hashlib

import pytest
from playwright.sync_api import expect

from devtools.synthetic import synthetic_video
from reports.intake.previews import item_previews_make
from reports.intake.storage import media_store
from reports.models import Decision, Item, ViewEvent

from .factories import make_metadata, push
from .support.browser import axe_serious, start_review

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("kind", ["mp4", "webm"])
def test_a_video_is_reviewed_by_keyboard_frame_by_frame_and_a_muted_segment_to_a_confirmation(login, reviewer, api, settings, kind):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    video = (synthetic_video(7, seconds=6, cuts=2, audio=True) if kind == "mp4"
             else synthetic_video(8, seconds=6, cuts=2, codec="libvpx-vp9", container="webm"))
    assert push(api, video, make_metadata(f"video/browser-{kind}"), content_type=f"video/{kind}").status_code == 201
    item = item_previews_make(item_id=Item.objects.get().pk)
    secret = {hashlib.sha256(video).hexdigest()} | {
        hashlib.sha256(media_store().get(name)).hexdigest() for kind, name in item.previews.items() if kind.endswith("-still")}

    page = login(reviewer)
    bodies = []
    page.on("response", lambda r: bodies.append((r.url, hashlib.sha256(r.body()).hexdigest()))
            if r.request.method == "GET" and "/media/" in r.url else None)
    start_review(page)
    expect(page.locator(".frame-pick")).to_have_count(len(item.frame_times))
    assert axe_serious(page) == []  # the video page's strip, buttons and keys are accessible too
    page.keyboard.press("]")
    page.keyboard.press("]")
    page.keyboard.press("[")  # frame 1
    expect(page.locator(".frame-pick.picked")).to_have_attribute("data-frame", "1")
    expect(page.locator("#media")).to_have_attribute("src", f"/media/{item.pk}/preview/frame-01-inspect-3/")
    page.wait_for_timeout(300)
    assert bodies and not [url for url, digest in bodies if digest in secret]  # only blurred stills so far

    page.keyboard.down(" ")
    expect(page.locator("#original")).to_be_visible()
    assert page.evaluate("[document.getElementById('original').width, document.getElementById('original').height]") == [320, 240]
    page.wait_for_timeout(500)
    page.keyboard.up(" ")
    expect(page.locator("#original")).to_be_hidden()

    # Playing a segment is its own act: held "p" plays a muted clip; release stops and unloads it.
    expect(page.locator("#segment")).to_be_hidden()
    assert page.evaluate("document.getElementById('segment').autoplay") is False
    page.keyboard.down("p")
    page.wait_for_function("() => { const v = document.getElementById('segment'); return !v.hidden && !v.paused && v.currentTime > 0.8; }",
                           timeout=10000)
    state = page.evaluate("(() => { const v = document.getElementById('segment'); return [v.muted, v.loop, v.volume > 0 && !v.muted]; })()")
    assert state == [True, False, False]
    page.keyboard.up("p")
    assert page.evaluate("(() => { const v = document.getElementById('segment'); return [v.hidden, v.paused, v.hasAttribute('src')]; })()") \
        == [True, True, False]
    if kind == "mp4":  # the file has sound: Shift+P plays it, unmuted, as its own act
        page.keyboard.down("Shift")
        page.keyboard.down("P")
        page.wait_for_function("() => { const v = document.getElementById('segment'); return !v.paused && v.currentTime > 0.3; }",
                               timeout=10000)
        assert page.evaluate("document.getElementById('segment').muted") is False
        assert page.inner_text("#badge") == "Playing with sound"
        page.keyboard.up("P")
        page.keyboard.up("Shift")
        expect(page.locator("#segment")).to_be_hidden()
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: f"/review/{item.pk}/" not in url)

    view = ViewEvent.objects.get(segment=False)
    assert view.frame == 1 and view.painted and 0.3 <= view.seconds <= 2
    played = ViewEvent.objects.get(segment=True, sound=False)
    assert played.frame == 1 and played.painted and 0.5 <= played.seconds <= 5  # played past 0.8 s of the clip
    assert ViewEvent.objects.filter(segment=True, sound=True).count() == (1 if kind == "mp4" else 0)
    decision = Decision.objects.get()
    assert (decision.item_id, decision.verdict, decision.classification, decision.viewed_unblurred) == (item.pk, "confirmed", "A1", True)
