"""Reviewer protection on the video page, measured in a real Chromium as the image page is
(tests/test_review_protection_browser.py, whose helpers this uses): after each trigger
(release, tab hidden, window blur, another window in front) a revealed frame and a playing
segment leave the screen within 100 ms, with no colour frame painted after it (frames told apart
by a mark showing whether the page had handled the trigger, not by their timestamps), under 150 ms of
added round trip and with the CPU throttled 4×; and the seconds metered for revealed frames and
played segments are within 5 % of the time the page painted them. Synthetic videos only."""

import pytest
from playwright.sync_api import expect

from devtools.synthetic import synthetic_video
from reports.intake.previews import item_previews_make
from reports.models import Item, ViewEvent

from .factories import make_metadata, push
from .support.browser import start_review
from .test_review_protection_browser import (
    HIDE_TAB,
    MARK,
    SHOW_TAB,
    Screencast,
    in_colour,
    off_screen_checked,
    page_focused_beside_another_window,
    probe_script,
    slow_network,
    trigger_measured,
    wait_for_db,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Before the page's scripts: each trigger as the first listener sees it, and on every animation
# frame whether the revealed still (#original) or the segment (#segment, playing) is on screen.
PROBE = probe_script(
    'const canvas = document.getElementById("original"), video = document.getElementById("segment");'
    " return {still: !!canvas && !canvas.hidden && canvas.width > 0,"
    " segment: !!video && !video.hidden && video.hasAttribute('src') && !video.paused && video.readyState >= 2};")


@pytest.fixture
def video_page(login, reviewer, api, settings):
    """A colourful 20 s video pushed and previewed; the reviewer's page open on it, revealing in
    colour, with the probe installed."""
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    video = synthetic_video(21, seconds=20, size=(480, 360), fps=10, cuts=3)
    assert push(api, video, make_metadata("video/protect"), content_type="video/mp4").status_code == 201
    item_previews_make(item_id=Item.objects.get().pk)
    in_colour(reviewer)

    def open_page():
        page = login(reviewer)
        page.add_init_script(PROBE)
        return page
    return open_page


def frame_box(page) -> dict:
    """Where a revealed still or a playing clip is drawn: the viewer's frame (the blurred
    preview under them is greyscale, so any colour there is the revealed picture)."""
    return page.evaluate("(() => { const r = document.getElementById('frame').getBoundingClientRect();"
                         " return {x: r.x, y: r.y, width: r.width, height: r.height}; })()")


def other_window_in_front(page):
    next(other for other in page.context.pages if other is not page).bring_to_front()


# (name, element, reveal, trigger, trigger's event, clean-up)
FRAME_TRIGGERS = [
    ("frame: pointer release", "original", lambda p: (p.hover("#reveal"), p.mouse.down()), lambda p: p.mouse.up(), "pointerup", None),
    ("frame: Space release", "original", lambda p: p.keyboard.down(" "), lambda p: p.keyboard.up(" "), "keyup", None),
    ("frame: tab hidden", "original", lambda p: p.keyboard.down(" "), lambda p: p.evaluate(HIDE_TAB), "visibilitychange",
     lambda p: (p.keyboard.up(" "), p.evaluate(SHOW_TAB))),
    ("frame: other window", "original", lambda p: p.keyboard.down(" "), other_window_in_front, "blur",
     lambda p: (p.bring_to_front(), p.keyboard.up(" "))),
]
SEGMENT_TRIGGERS = [
    ("segment: pointer release", "segment", lambda p: (p.hover("#play"), p.mouse.down()), lambda p: p.mouse.up(), "pointerup", None),
    ("segment: p release", "segment", lambda p: p.keyboard.down("p"), lambda p: p.keyboard.up("p"), "keyup", None),
    ("segment: tab hidden", "segment", lambda p: p.keyboard.down("p"), lambda p: p.evaluate(HIDE_TAB), "visibilitychange",
     lambda p: (p.keyboard.up("p"), p.evaluate(SHOW_TAB))),
    ("segment: window blur", "segment", lambda p: p.keyboard.down("p"),
     lambda p: p.evaluate("window.dispatchEvent(new Event('blur'))"), "blur", lambda p: p.keyboard.up("p")),
    ("segment: other window", "segment", lambda p: p.keyboard.down("p"), other_window_in_front, "blur",
     lambda p: (p.bring_to_front(), p.keyboard.up("p"))),
]
SHOWN = {"original": "still", "segment": "segment"}


@pytest.mark.parametrize("condition", ["rtt+150ms", "cpu/4"])
def test_a_revealed_frame_and_a_playing_segment_leave_the_screen_within_100_ms_with_no_colour_after(
        video_page, condition):
    page = video_page()
    page.add_init_script(MARK)
    if condition == "rtt+150ms":
        slow_network(page)
    cast = Screencast(page)
    start_review(page)
    page.keyboard.press("]")  # frame 1: a frame other than the first
    page_focused_beside_another_window(page, cast)
    if condition == "cpu/4":
        cast.cdp.send("Emulation.setCPUThrottlingRate", {"rate": 4})
    cast.start()
    results = []
    for name, element, reveal, trigger, event_type, cleanup in FRAME_TRIGGERS + SEGMENT_TRIGGERS:
        shown = SHOWN[element]
        seen_frames = len(page.evaluate("__probe.frames"))
        reveal(page)
        page.wait_for_function(f"() => __probe.frames.slice({seen_frames}).filter(f => f.{shown}).length > 10", timeout=20000)
        page.wait_for_timeout(200)
        box = frame_box(page)
        seen = len(page.evaluate("__probe.triggers"))
        trigger(page)
        expect(page.locator(f"#{element}")).to_be_hidden()
        page.wait_for_timeout(300)  # frames painted after the trigger arrive
        if cleanup:
            cleanup(page)
        results.append({"trigger": name, **trigger_measured(page, cast, seen=seen, event_type=event_type, box=box,
                                                             shows=lambda frame: frame["still"] or frame["segment"])})
        page.wait_for_timeout(150)
    cast.stop()
    off_screen_checked(condition, results)
    assert ViewEvent.objects.filter(segment=False).count() == len(FRAME_TRIGGERS)
    assert ViewEvent.objects.filter(segment=True).count() == len(SEGMENT_TRIGGERS)


def test_revealed_frames_and_played_segments_are_metered_within_5_percent_of_the_painted_time(video_page):
    page = video_page()
    start_review(page)
    # (key held, element it shows, ms held once it is on screen, frame chosen first)
    holds = [(" ", "still", 1000, "]"), ("p", "segment", 1500, "]"), (" ", "still", 600, None),
             ("p", "segment", 2500, "["), (" ", "still", 1800, None), ("p", "segment", 800, None)]
    painted = {"still": 0.0, "segment": 0.0}
    for key, shown, hold, pick in holds:
        if pick:
            page.keyboard.press(pick)
        seen_triggers, seen_frames = len(page.evaluate("__probe.triggers")), len(page.evaluate("__probe.frames"))
        page.keyboard.down(key)
        page.wait_for_function(f"() => __probe.frames.slice({seen_frames}).some(f => f.{shown})", timeout=20000)
        page.wait_for_timeout(hold)
        page.keyboard.up(key)
        expect(page.locator("#original")).to_be_hidden()
        expect(page.locator("#segment")).to_be_hidden()
        probe = page.evaluate("__probe")
        released = next(t for t in probe["triggers"][seen_triggers:] if t["type"] == "keyup")
        first = next(f for f in probe["frames"][seen_frames:] if f[shown])
        painted[shown] += released["at"] - first["at"]
        page.wait_for_timeout(200)
    assert wait_for_db(lambda: ViewEvent.objects.filter(reported=True).count() == len(holds), page, seconds=20)
    counted = {kind: sum(ViewEvent.objects.filter(segment=kind == "segment").values_list("seconds", flat=True))
               for kind in painted}
    print(f"\nmetered: frames {counted['still']:.2f} s for {painted['still'] / 1000:.2f} s painted; "
          f"segments {counted['segment']:.2f} s for {painted['segment'] / 1000:.2f} s painted")
    assert ViewEvent.objects.filter(painted=True).count() == len(holds)
    assert counted["still"] == pytest.approx(painted["still"] / 1000, rel=0.05)
    assert counted["segment"] == pytest.approx(painted["segment"] / 1000, rel=0.05)
    from reports.models import ExposureDay

    day = ExposureDay.objects.get()
    assert day.unblurred_seconds == pytest.approx(sum(painted.values()) / 1000, rel=0.05)
