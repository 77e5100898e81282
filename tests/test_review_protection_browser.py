"""Reviewer protection measured in a real Chromium (issue 11).

What the screen actually painted when the original is re-blurred (CDP screencast frames read back
as pixels, each telling by a mark it carries whether it shows the page before or after the trigger
was handled, and the page's own requestAnimationFrame clock), under
150 ms of added round trip and with the CPU throttled 4x; reveal reports that survive lost
requests; a still first frame for animated files; no upscaling; the reveal refused at the cap;
the break prompt as a keyboard-operable modal dialog; the small home and top-bar items; and
axe-core on the pages reviewers and leads use. Only synthetic images drawn by Pillow."""

import base64
import io
import json
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from PIL import Image, ImageChops, ImageDraw, ImageStat
from playwright.sync_api import expect

from reports.models import Decision, ExposureDay, Item, ReviewerSettings, ViewEvent

from .factories import make_item, make_metadata, push
from .support.browser import axe_serious, start_review

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(django_settings.BASE_DIR) / "static" / "js" / "vendor" / "axe.min.js"
OFF_SCREEN_MS = 100      # the target: original off screen within 100 ms of the trigger
COLOUR_SHARE = 0.02      # a frame region is "in colour" when 2 % of its pixels are saturated
SATURATED = 40           # max(r, g, b) - min(r, g, b) above this is colour, not grey (or JPEG noise)

def probe_script(shown: str) -> str:
    """A script installed before the page's own: notes each trigger as the first listener to see
    it, and on every animation frame what is part of what gets painted (`shown`: the body of a
    JavaScript function returning the frame's fields)."""
    return """(() => {
  const probe = window.__probe = {origin: performance.timeOrigin, triggers: [], frames: []};
  const note = (e) => probe.triggers.push({type: e.type, at: performance.now(), stamp: e.timeStamp});
  for (const type of ["pointerup", "keyup", "visibilitychange", "pagehide"]) window.addEventListener(type, note, true);
  window.addEventListener("blur", (e) => { if (e.target === window) note(e); }, true);
  const shown = () => { SHOWN };
  const loop = () => {
    probe.frames.push(Object.assign({at: performance.now()}, shown()));
    requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
})();""".replace("SHOWN", shown)


# Whether the original's canvas is on screen.
PROBE = probe_script('const canvas = document.getElementById("original");'
                     " return {shown: !!canvas && !canvas.hidden && canvas.width > 0};")

# Installed after PROBE in the re-blur tests: a row of black and white cells in the viewport's
# top-left corner, outside the viewer's frame, showing in binary how many trigger events the page
# has handled (the length of __probe.triggers). A listener that runs before the page's own rewrites
# it in the same task as the page's re-blur, so both changes reach the screen in the same frame.
# A screencast frame's timestamp is taken when the browser process receives the captured frame
# (after compositing, copy-out and read-back: 10-40 ms later here, more under load), not when it
# was composited; so a frame the page drew just before the trigger, while a clip was playing, can
# carry a timestamp after it. The mark says from the pixels themselves which side it is on.
MARK_CELLS, MARK_PX = 8, 12
MARK = """(() => {
  const mark = document.createElement("div");
  mark.setAttribute("aria-hidden", "true");
  mark.style.cssText = "position:fixed;left:0;top:0;z-index:2147483647;display:flex;pointer-events:none";
  const cells = [];
  for (let i = 0; i < %d; i++) {
    const cell = document.createElement("div");
    cell.style.cssText = "width:%dpx;height:%dpx;background:#000";
    mark.appendChild(cell);
    cells.push(cell);
  }
  const show = () => {
    const count = window.__probe.triggers.length;
    cells.forEach((cell, i) => { cell.style.background = (count >> i) & 1 ? "#fff" : "#000"; });
  };
  for (const type of ["pointerup", "keyup", "visibilitychange", "pagehide"]) window.addEventListener(type, show, true);
  window.addEventListener("blur", (e) => { if (e.target === window) show(); }, true);
  document.addEventListener("DOMContentLoaded", () => { document.body.appendChild(mark); show(); });
})();""" % (MARK_CELLS, MARK_PX, MARK_PX)


# --- Helpers -----------------------------------------------------------------------------------

@pytest.fixture
def login(login):
    """The suite's signed-in browser, with the page-side probe installed before any script."""

    def open_as(user):
        page = login(user)
        page.add_init_script(PROBE)
        return page

    return open_as


def in_colour(settings_user, **changes):
    """Reviewer settings that reveal in colour, so a painted original is told from the preview."""
    values = {"greyscale": False, "reveal_mode": "hold"} | changes
    ReviewerSettings.objects.update_or_create(user=settings_user, defaults=values)


def colour_share(image: Image.Image, box) -> float:
    region = image.crop(box).convert("RGB")
    r, g, b = region.split()
    spread = ImageChops.subtract(ImageChops.lighter(ImageChops.lighter(r, g), b),
                                 ImageChops.darker(ImageChops.darker(r, g), b))
    histogram = spread.histogram()
    return sum(histogram[SATURATED + 1:]) / max(1, sum(histogram))


def canvas_box(page) -> dict:
    return page.evaluate("(() => { const r = document.getElementById('original').getBoundingClientRect();"
                         " return {x: r.x, y: r.y, width: r.width, height: r.height}; })()")


def wait_for_db(predicate, page, seconds=10):
    for _ in range(int(seconds * 10)):
        if predicate():
            return True
        page.wait_for_timeout(100)
    return False


class Screencast:
    """Every frame the compositor swaps, with its timestamp (ms since the epoch, taken when the
    browser process received the captured frame: later than the frame was composited)."""

    def __init__(self, page):
        self.cdp = page.context.new_cdp_session(page)
        self.frames = []  # (ms, metadata, jpeg bytes)
        self.cdp.on("Page.screencastFrame", self._frame)

    def _frame(self, event):
        meta = event["metadata"]
        self.frames.append((meta["timestamp"] * 1000, meta, base64.b64decode(event["data"])))
        self.cdp.send("Page.screencastFrameAck", {"sessionId": event["sessionId"]})

    def start(self):
        self.cdp.send("Page.startScreencast", {"format": "jpeg", "quality": 85, "everyNthFrame": 1})

    def stop(self):
        self.cdp.send("Page.stopScreencast")

    def colour(self, frame, box) -> float:
        _, meta, data = frame
        image = Image.open(io.BytesIO(data))
        scale = image.width / meta["deviceWidth"]
        top = meta.get("offsetTop", 0)
        # A pixel inside the edge, so antialiased borders do not count.
        crop = (int((box["x"] + 2) * scale), int((box["y"] + top + 2) * scale),
                int((box["x"] + box["width"] - 2) * scale), int((box["y"] + top + box["height"] - 2) * scale))
        return colour_share(image, crop)

    def mark(self, frame) -> int:
        """The trigger events the page had handled when it drew this frame (MARK)."""
        _, meta, data = frame
        image = Image.open(io.BytesIO(data)).convert("L")
        scale = image.width / meta["deviceWidth"]
        top = meta.get("offsetTop", 0)
        count = 0
        for i in range(MARK_CELLS):
            x, y = int((i + 0.5) * MARK_PX * scale), int((top + MARK_PX / 2) * scale)
            if ImageStat.Stat(image.crop((x - 2, y - 2, x + 2, y + 2))).mean[0] > 128:
                count |= 1 << i
        return count

    def around(self, seen: int, handled_ms: float):
        """The frames up to a trigger and from it on, told apart by what they show: every frame
        from the first one that shows the page after the trigger was handled (its mark counts
        more than the `seen` events before it) is after it, so is any frame timestamped after that
        one; the frames drawn before the trigger was handled but received after it (`late`) are
        counted on their own."""
        assert seen < 2 ** MARK_CELLS, "more trigger events than the mark can count"
        frames = sorted(self.frames, key=lambda f: f[0])
        first = next((i for i, f in enumerate(frames) if self.mark(f) > seen), len(frames))
        before, after = frames[:first], frames[first:]
        return before, after, [f for f in before if f[0] > handled_ms]


def trigger_measured(page, cast: Screencast, *, seen: int, event_type: str, box, shows) -> dict:
    """What a trigger did, once its frames have arrived: the page's clock (the first animation
    frame after the trigger was handled, and whether it still showed the original: `shows(frame)`
    of the probe's frame) and the screen (every swapped frame from the first one showing the
    page after the trigger was handled, MARK, read back as pixels; frames of what was on screen
    drawn just before the trigger are often received after it, so frames are told apart by what
    they show, not by their timestamps). `seen`: the probe's triggers before this one."""
    probe = page.evaluate("__probe")
    fired = next(t for t in probe["triggers"][seen:] if t["type"] == event_type)
    event_ms, handled_ms = probe["origin"] + fired["stamp"], probe["origin"] + fired["at"]
    next_frame = next(f for f in probe["frames"] if f["at"] > fired["at"])
    before, after, late = cast.around(seen, handled_ms)
    shares = [cast.colour(f, box) for f in after]
    grey_at = next((f[0] for f, share in zip(after, shares, strict=True) if share < COLOUR_SHARE), None)
    return {"raf_ms": round(next_frame["at"] - fired["stamp"], 1), "handled_ms": round(fired["at"] - fired["stamp"], 1),
            "raf_shows": shows(next_frame), "screen_ms": None if grey_at is None else round(grey_at - event_ms, 1),
            "colour_frames_after": sum(share >= COLOUR_SHARE for share in shares), "frames_after": len(after),
            "drawn_before_received_after": len(late),
            "revealed_in_colour": bool(before) and cast.colour(before[-1], box) >= COLOUR_SHARE}


def off_screen_checked(condition: str, results: list[dict]) -> None:
    """Print what each trigger measured, then hold each to the target: seen in colour while
    revealed (so the measurement sees it), gone at the next animation frame and on screen within
    OFF_SCREEN_MS, and no colour frame painted after it."""
    print(f"\n{condition}: " + "; ".join(
        f"{r['trigger']}: screen {r['screen_ms']} ms, rAF {r['raf_ms']} ms (handled at {r['handled_ms']} ms), "
        f"{r['colour_frames_after']} colour of {r['frames_after']} frames after "
        f"({r['drawn_before_received_after']} drawn before it, received after)" for r in results))
    for r in results:
        assert r["revealed_in_colour"], r
        assert not r["raf_shows"], r
        assert r["raf_ms"] <= OFF_SCREEN_MS, r
        assert r["screen_ms"] is not None and r["screen_ms"] <= OFF_SCREEN_MS, r
        assert r["colour_frames_after"] == 0, r


# --- Re-blur: what the screen paints after each trigger ---------------------------------------

def hold_pointer(page):
    page.hover("#reveal")
    page.mouse.down()


def release_pointer(page):
    page.mouse.up()


def hold_space(page):
    page.keyboard.down(" ")


def release_space(page):
    page.keyboard.up(" ")


HIDE_TAB = ("Object.defineProperty(document, 'hidden', {value: true, configurable: true});"
            "Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});"
            "document.dispatchEvent(new Event('visibilitychange'))")
SHOW_TAB = "delete document.hidden; delete document.visibilityState"


def other_window_in_front(page):
    """A real loss of focus: another window of the browser (opened beforehand) comes to the front."""
    next(other for other in page.context.pages if other is not page).bring_to_front()


def page_focused_beside_another_window(page, cast: Screencast) -> None:
    """Open the other window of the "other window" trigger, turn off focus emulation (real focus,
    so it can be lost) and bring the page to the front, waiting until it has the focus: a window
    is activated asynchronously, so asking at once sometimes found it not focused yet."""
    page.context.new_page().goto("/")
    cast.cdp.send("Emulation.setFocusEmulationEnabled", {"enabled": False})
    page.bring_to_front()
    page.wait_for_function("document.hasFocus()", timeout=5000)


def back_to_the_page(page):
    page.bring_to_front()
    release_space(page)


# (name, reveal, trigger, trigger event type, clean-up after the trigger)
TRIGGERS = [
    ("pointer release", hold_pointer, release_pointer, "pointerup", None),
    ("Space release", hold_space, release_space, "keyup", None),
    ("tab hidden", hold_space, lambda page: page.evaluate(HIDE_TAB), "visibilitychange",
     lambda page: (release_space(page), page.evaluate(SHOW_TAB))),
    ("window blur", hold_space, lambda page: page.evaluate("window.dispatchEvent(new Event('blur'))"), "blur",
     release_space),
    ("other window", hold_space, other_window_in_front, "blur", back_to_the_page),
]


def slow_network(page, ms=150):
    def delayed(route):
        page.wait_for_timeout(ms)  # lets Playwright's loop run on (screencast frames keep coming)
        route.continue_()
    page.route("**/*", delayed)


@pytest.mark.parametrize("condition", ["rtt+150ms", "cpu/4"])
def test_the_original_leaves_the_screen_within_100_ms_and_no_colour_is_painted_after_the_trigger(
        login, reviewer, condition):
    make_item(3)
    in_colour(reviewer)
    page = login(reviewer)
    page.add_init_script(MARK)
    if condition == "rtt+150ms":
        slow_network(page)
    cast = Screencast(page)
    start_review(page)
    page_focused_beside_another_window(page, cast)
    if condition == "cpu/4":
        cast.cdp.send("Emulation.setCPUThrottlingRate", {"rate": 4})
    cast.start()
    results = []
    for name, reveal, trigger, event_type, cleanup in TRIGGERS:
        reveal(page)
        expect(page.locator("#original")).to_be_visible()
        page.wait_for_timeout(300)
        box = canvas_box(page)
        seen = len(page.evaluate("__probe.triggers"))
        trigger(page)
        expect(page.locator("#original")).to_be_hidden()
        page.wait_for_timeout(300)  # frames painted after the trigger arrive
        if cleanup:
            cleanup(page)
        results.append({"trigger": name, **trigger_measured(page, cast, seen=seen, event_type=event_type, box=box,
                                                             shows=lambda frame: frame["shown"])})
        page.wait_for_timeout(100)
    cast.stop()
    off_screen_checked(condition, results)
    assert ViewEvent.objects.count() == len(TRIGGERS)


def test_a_decision_sent_while_revealed_re_blurs_first_and_carries_its_reveal_report(login, reviewer, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    make_item(11)
    page = login(reviewer)
    page.route("**/views/*/", lambda route: route.abort("connectionreset"))  # only the form's copy arrives
    item_id = start_review(page)
    # The last listener to see the submit runs just before the browser sends the form.
    page.evaluate("""window.addEventListener("submit", () => { const c = document.getElementById("original");
        sessionStorage.setItem("atSubmit", JSON.stringify([c.hidden, c.width, document.getElementById("badge").textContent,
                                                           document.getElementById("view-reports").value])); })""")
    page.keyboard.down(" ")
    expect(page.locator("#original")).to_be_visible()
    page.wait_for_timeout(400)
    page.keyboard.press("1")
    page.keyboard.press("Enter")  # decided while the original is still up
    page.wait_for_url(lambda url: f"/review/{item_id}/" not in url, timeout=5000)
    page.keyboard.up(" ")
    hidden, width, badge, carried = page.evaluate("JSON.parse(sessionStorage.getItem('atSubmit'))")
    assert (hidden, width, badge) == (True, 0, "Blurred")
    view = ViewEvent.objects.get()
    assert [entry["view"] for entry in json.loads(carried)] == [view.pk]
    assert view.painted and 0.4 <= view.seconds <= 1.5
    decision = Decision.objects.get()
    assert (decision.verdict, decision.classification, decision.viewed_unblurred) == ("confirmed", "A1", True)


# --- Reveal reports: retried, metered within 5 % of the painted time --------------------------

def test_reveal_reports_survive_dropped_requests_and_meter_the_painted_time(login, reviewer):
    make_item(4)
    page = login(reviewer)
    posts = []

    def drop_one_in_five(route):
        posts.append((route.request.url, route.request.post_data_json))
        if len(posts) % 5 == 1:  # the 1st, 6th, 11th … report request is lost
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/views/*/", drop_one_in_five)
    start_review(page)
    holds = [1000, 500, 2000, 300, 1200, 700]
    painted_ms = 0.0
    for hold in holds:
        seen_triggers, seen_frames = len(page.evaluate("__probe.triggers")), len(page.evaluate("__probe.frames"))
        page.keyboard.down(" ")
        expect(page.locator("#original")).to_be_visible()
        page.wait_for_timeout(hold)
        page.keyboard.up(" ")
        expect(page.locator("#original")).to_be_hidden()
        probe = page.evaluate("__probe")
        released = next(t for t in probe["triggers"][seen_triggers:] if t["type"] == "keyup")
        first_painted = next(f for f in probe["frames"][seen_frames:] if f["shown"])
        painted_ms += released["at"] - first_painted["at"]
        page.wait_for_timeout(150)
    assert wait_for_db(lambda: ViewEvent.objects.filter(reported=True).count() == len(holds), page, seconds=15)
    counted = sum(ViewEvent.objects.values_list("seconds", flat=True))
    reported = {url: body for url, body in posts}  # the last attempt of each view
    page_ms = sum(body["painted_ms"] for body in reported.values())
    dropped = len(range(1, len(posts) + 1, 5))
    print(f"\nreports: {len(posts)} requests, {dropped} dropped; counted {counted:.2f} s, "
          f"page painted {page_ms / 1000:.2f} s, probe painted {painted_ms / 1000:.2f} s, held {sum(holds) / 1000:.2f} s")
    assert dropped >= 2 and len(posts) >= len(holds) + dropped  # each lost report was sent again
    assert all(body["painted"] is True and body["seconds"] == pytest.approx(body["painted_ms"] / 1000, abs=0.001)
               for body in reported.values())
    assert counted == pytest.approx(painted_ms / 1000, rel=0.05)
    assert counted == pytest.approx(page_ms / 1000, rel=0.05)


def test_a_report_that_keeps_failing_is_kept_and_sent_with_keepalive_when_the_reviewer_leaves(login, reviewer):
    make_item(12)
    page = login(reviewer)
    attempts = []
    page.route("**/views/*/", lambda route: (attempts.append(route.request.post_data_json), route.abort("connectionreset")))
    start_review(page)
    page.keyboard.down(" ")
    expect(page.locator("#original")).to_be_visible()
    page.wait_for_timeout(500)
    page.keyboard.up(" ")
    page.wait_for_timeout(1200)  # the first report and two retries fail
    assert len(attempts) >= 3 and not ViewEvent.objects.filter(reported=True).exists()
    kept = page.evaluate("JSON.parse(sessionStorage.getItem('tsreview.pendingViews'))")
    assert list(kept.values()) == [attempts[0]]
    # Leaving sends what is still pending with keepalive (the browser sends it after the page
    # is gone, outside Playwright's routing); the next review page would send it too.
    page.goto("/")
    assert wait_for_db(lambda: ViewEvent.objects.filter(reported=True).exists(), page)
    assert ViewEvent.objects.get().seconds == pytest.approx(attempts[0]["painted_ms"] / 1000, abs=0.01)
    assert 0.45 <= ViewEvent.objects.get().seconds <= 1


def test_a_reveal_released_before_the_bytes_arrive_is_reported_as_not_painted(login, reviewer):
    make_item(5)
    page = login(reviewer)
    bodies = []
    page.route("**/original/", lambda route: (page.wait_for_timeout(400), route.continue_()))
    page.route("**/views/*/", lambda route: (bodies.append(route.request.post_data_json), route.continue_()))
    start_review(page)
    page.keyboard.down(" ")
    assert page.inner_text("#badge") == "Loading original…"  # the wait on a slow network is visible
    page.keyboard.up(" ")  # released while the original is still on its way
    assert page.inner_text("#badge") == "Blurred"
    assert wait_for_db(lambda: ViewEvent.objects.filter(reported=True).exists(), page)
    page.wait_for_timeout(300)
    assert bodies == [{"seconds": 0, "painted": False, "painted_ms": 0}]
    assert not page.evaluate("__probe.frames.some(f => f.shown)")
    view = ViewEvent.objects.get()
    assert view.seconds == 0 and not view.painted  # not a view: it allows no confirmation


# --- Moving images, size --------------------------------------------------------------------

COLOURS = [(220, 30, 30), (30, 200, 40), (40, 60, 230), (240, 220, 20), (200, 30, 200), (20, 210, 220)]


def animated_gif(size=(320, 240)) -> bytes:
    """Six frames, each a different strong colour, 100 ms apart, looping."""
    frames = []
    for i, colour in enumerate(COLOURS):
        image = Image.new("RGB", size, colour)
        draw = ImageDraw.Draw(image)
        draw.ellipse([20 + 30 * i, 40, 120 + 30 * i, 140], fill=tuple(255 - c for c in colour))
        draw.text((10, 10), f"SYNTHETIC FRAME {i}", fill=(255, 255, 255))
        frames.append(image)
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def test_an_animated_gif_is_revealed_as_its_still_first_frame(login, reviewer, api):
    response = push(api, animated_gif(), make_metadata("fixture/animated"), content_type="image/gif")
    assert response.status_code == 201, response.content
    item = Item.objects.get()
    assert item.frames == len(COLOURS) and item.state == Item.State.QUEUED
    in_colour(reviewer)
    page = login(reviewer)
    start_review(page)
    assert f"animated, {len(COLOURS)} frames" in page.inner_text(".viewer")  # moving media: a frame strip
    page.keyboard.down(" ")
    expect(page.locator("#original")).to_be_visible()
    page.wait_for_timeout(150)
    box = canvas_box(page)
    clip = {"x": box["x"] + box["width"] - 60, "y": box["y"] + box["height"] - 40, "width": 40, "height": 24}
    samples = []
    for _ in range(10):  # ~1.2 s: six frames of 100 ms would have cycled twice
        shot = Image.open(io.BytesIO(page.screenshot(clip=clip))).convert("RGB")
        samples.append(tuple(round(v) for v in ImageStat.Stat(shot).mean))
        page.wait_for_timeout(60)
    page.keyboard.up(" ")
    print(f"\nanimated GIF: {len(set(samples))} distinct colour(s) over {len(samples)} samples: {samples[0]}")
    assert len(set(samples)) == 1
    assert all(abs(a - b) <= 30 for a, b in zip(samples[0], COLOURS[0], strict=True))  # the first frame's red


@pytest.mark.parametrize(("natural", "size"), [((320, 240), "large"), ((1600, 1200), "medium")])
def test_an_original_is_never_shown_larger_than_its_natural_size_or_the_frame(login, reviewer, natural, size):
    make_item(6, size=natural)
    in_colour(reviewer, size=size)
    page = login(reviewer)
    start_review(page)
    page.keyboard.down(" ")
    expect(page.locator("#original")).to_be_visible()
    shown = canvas_box(page)
    frame = page.evaluate("(() => { const r = document.getElementById('frame').getBoundingClientRect();"
                          " return {width: r.width, height: r.height}; })()")
    page.keyboard.up(" ")
    print(f"\n{natural[0]}×{natural[1]} in a {frame['width']:.0f}×{frame['height']:.0f} frame: "
          f"shown at {shown['width']:.0f}×{shown['height']:.0f}")
    assert shown["width"] <= natural[0] and shown["height"] <= natural[1]
    assert shown["width"] <= frame["width"] + 0.5 and shown["height"] <= frame["height"] + 0.5
    assert shown["width"] / shown["height"] == pytest.approx(natural[0] / natural[1], rel=0.01)
    if natural == (320, 240):
        assert (round(shown["width"]), round(shown["height"])) == natural  # not scaled at all
    else:
        assert max(shown["width"] / frame["width"], shown["height"] / frame["height"]) == pytest.approx(1, abs=0.01)


# --- The cap, the break dialog ---------------------------------------------------------------

def test_at_the_cap_the_reveal_is_refused_and_the_page_says_why_once(login, reviewer):
    make_item(7)
    page = login(reviewer)
    originals = []
    page.on("request", lambda request: originals.append(request.url) if "/original/" in request.url else None)
    start_review(page)
    # The cap is reached while the item is held (another tab, or the report of an earlier look).
    ExposureDay.objects.update_or_create(user=reviewer, day=timezone.localdate(), defaults={"unblurred_seconds": 15 * 60})
    page.keyboard.down(" ")
    expect(page.locator("#reveal-alert")).to_have_text("You have reached today's exposure limit. Thank you — no more items today.")
    page.keyboard.up(" ")
    assert page.get_attribute("#reveal-alert", "role") == "alert"
    assert page.inner_text("#badge") == "Daily limit reached"
    page.keyboard.down(" ")  # asking again does not ask the server again
    page.keyboard.up(" ")
    page.click("#reveal", force=True)  # aria-disabled: pressing it does nothing
    page.wait_for_timeout(300)
    assert len(originals) == 1 and not ViewEvent.objects.exists()
    expect(page.get_by_text("today's exposure limit")).to_have_count(1)
    expect(page.locator("#original")).to_be_hidden()
    assert page.get_attribute("#reveal", "aria-disabled") == "true"


def test_a_reveal_while_storage_is_unreachable_says_so_and_counts_nothing(login, reviewer):
    """The server answers 503 when its media store does not answer (tests/test_media_stores.py);
    here the page's side of it: the reviewer is told why, nothing is shown, and a later try
    works."""
    make_item(11)
    page = login(reviewer)
    page.route("**/original/", lambda route: route.fulfill(
        status=503, headers={"Retry-After": "30"}, content_type="text/html",
        body="<!doctype html><title>Unavailable</title><h1>tsreview is briefly unavailable</h1>"))
    start_review(page)
    page.keyboard.down(" ")
    expect(page.locator("#reveal-refused")).to_contain_text("cannot reach its storage")
    page.keyboard.up(" ")
    assert page.inner_text("#badge") == "Could not reveal"
    expect(page.locator("#original")).to_be_hidden()
    assert not page.evaluate("__probe.frames.some(f => f.shown)")
    page.unroute("**/original/")
    page.keyboard.down(" ")  # storage is back: the same page reveals, and the message goes
    expect(page.locator("#original")).to_be_visible()
    expect(page.locator("#reveal-refused")).to_have_count(0)
    page.keyboard.up(" ")
    expect(page.locator("#original")).to_be_hidden()


def test_the_break_prompt_is_a_modal_dialog_run_by_keyboard(login, reviewer):
    make_item(8)
    page = login(reviewer)
    start_review(page)
    ExposureDay.objects.update_or_create(user=reviewer, day=timezone.localdate(),
                                         defaults={"active_since_break_seconds": 50 * 60})
    originals = []
    page.on("request", lambda request: originals.append(request.url) if "/original/" in request.url else None)
    page.reload()  # the heartbeat sent on load finds the break due
    dialog = page.locator("#break")
    expect(dialog).to_be_visible()
    assert page.evaluate("document.getElementById('break').open && document.getElementById('break').matches(':modal')")
    assert page.evaluate("!!document.activeElement.closest('#break')")
    for key in [" ", "Enter", "s", "2"]:
        page.keyboard.press(key)
    page.keyboard.down(" ")
    page.wait_for_timeout(300)
    page.keyboard.up(" ")
    assert originals == [] and "/review/" in page.url
    expect(page.locator("#original")).to_be_hidden()
    page.keyboard.press("Tab")  # focus stays in the dialog
    assert page.evaluate("!!document.activeElement.closest('#break')")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.keyboard.down(" ")  # with the dialog closed, Space reveals again
    expect(page.locator("#original")).to_be_visible()
    page.keyboard.up(" ")
    assert len(originals) == 1
    page.reload()  # due again on the next page; the button closes it too
    expect(dialog).to_be_visible()
    page.click("#dismiss-break")
    expect(dialog).to_be_hidden()


# --- Small items: top bar, cap message once, focus, aligned cards ------------------------------

def test_home_shows_exposure_time_focuses_resume_and_aligns_its_cards(login, reviewer):
    make_item(9)
    ExposureDay.objects.create(user=reviewer, day=timezone.localdate(), unblurred_seconds=75)
    page = login(reviewer)
    start_review(page)
    page.goto("/")
    expect(page.locator("#meter-time")).to_have_text("75 s")
    assert " ".join(page.text_content(".meter").split()) == "Exposure today 75 s of 15 min · 8%"
    assert page.evaluate("document.activeElement.id") == "resume"
    cards = page.locator(".home-grid .card")
    tops = [cards.nth(i).bounding_box()["y"] for i in range(2)]
    headings = [cards.nth(i).locator("h1, h2").first.bounding_box()["y"] for i in range(2)]
    assert tops[0] == pytest.approx(tops[1], abs=1) and headings[0] == pytest.approx(headings[1], abs=1)


def test_the_cap_message_appears_once(login, reviewer):
    ExposureDay.objects.create(user=reviewer, day=timezone.localdate(), unblurred_seconds=15 * 60)
    page = login(reviewer)
    page.goto("/")
    expect(page.get_by_text("today's exposure limit")).to_have_count(1)
    # Asking for an item at the cap flashes the same message on the way back: still once.
    page.evaluate("""() => { const f = document.createElement("form"); f.method = "post"; f.action = "/claim/";
        const t = document.createElement("input"); t.type = "hidden"; t.name = "csrfmiddlewaretoken";
        t.value = document.querySelector('meta[name="csrf-token"]').content; f.append(t); document.body.append(f); f.submit(); }""")
    page.wait_for_load_state()
    expect(page.locator(".flash.warning")).to_have_count(1)
    visible = [el for el in page.get_by_text("today's exposure limit").all() if el.is_visible()]
    assert len(visible) == 1


# --- Accessibility --------------------------------------------------------------------------

def test_axe_finds_no_serious_or_critical_violations(login, reviewer, lead):
    make_item(10)
    assert AXE.is_file()
    page = login(reviewer)
    found = {}
    page.goto("/")
    found["home"] = axe_serious(page)
    start_review(page)
    found["review"] = axe_serious(page)
    page.keyboard.down(" ")
    expect(page.locator("#original")).to_be_visible()
    found["review, revealed"] = axe_serious(page)
    page.keyboard.up(" ")
    page.goto("/settings/")
    found["settings"] = axe_serious(page)
    lead_page = login(lead)
    lead_page.goto("/lead/decisions/")
    found["lead decisions"] = axe_serious(lead_page)
    assert found == {name: [] for name in found}
