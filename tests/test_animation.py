"""Animated GIF, WebP and APNG are moving media (DESIGN §5b, issue 12): reviewed by the same
frame strip as a video (sampled frames, a contact sheet, one frame's still per reveal), made
in the limited decoding child; the animated file itself never reaches a browser. Pictures
made here with Pillow."""

import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from reports.intake.previews import item_previews_make
from reports.models import AuditEvent, Item, ViewEvent
from reports.review import queue

from .factories import make_metadata, push

pytestmark = pytest.mark.django_db

# Each frame a flat colour with its number drawn on it; 300 ms each, 8 frames.
COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 40), (40, 220, 220), (220, 40, 220),
           (250, 250, 250), (10, 10, 10)]
SIZE = (160, 120)


def animation(fmt: str) -> bytes:
    frames = []
    for n, colour in enumerate(COLOURS):
        image = Image.new("RGB", SIZE, colour)
        ImageDraw.Draw(image).text((8, 8), f"SYNTHETIC frame {n}", fill=(128, 128, 128))
        frames.append(image)
    out = io.BytesIO()
    options = {"GIF": {"loop": 0}, "WEBP": {"lossless": True}, "PNG": {}}[fmt]
    frames[0].save(out, fmt, save_all=True, append_images=frames[1:], duration=300, **options)
    return out.getvalue()


TYPES = {"GIF": "image/gif", "WEBP": "image/webp", "PNG": "image/png"}


def pushed(api, fmt: str) -> Item:
    response = push(api, animation(fmt), make_metadata(f"animated/{fmt}"), content_type=TYPES[fmt])
    assert response.status_code == 201, response.content
    return item_previews_make(item_id=Item.objects.get().pk)  # what the worker does


def colour_of(data: bytes) -> tuple:
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64)
    return tuple(pixels[40:, 100:].reshape(-1, 3).mean(axis=0).round())  # away from the drawn text


@pytest.mark.parametrize("fmt", list(TYPES))
def test_an_animated_picture_gets_the_frame_strip_of_moving_media(api, fmt):
    item = pushed(api, fmt)
    assert item.mime_type == TYPES[fmt] and item.frames == 8 and item.is_moving and not item.is_video
    assert item.state == Item.State.QUEUED
    # every frame is a scene change here and 300 ms long: all eight are sampled, at their times
    assert item.frame_times == pytest.approx([0.3 * n for n in range(8)])
    assert len(item.frame_pdqs) == 8
    assert {"thumb", "inspect-1", "inspect-2", "inspect-3"} <= set(item.previews)
    assert all(f"frame-{n:02d}-still" in item.previews and f"frame-{n:02d}-inspect-3" in item.previews for n in range(8))


@pytest.fixture
def held_gif(api, reviewer, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    pushed(api, "GIF")
    return queue.item_claim(user=reviewer)


def test_a_reveal_of_an_animated_picture_sends_the_chosen_frame_never_the_file(rita, held_gif):
    item = held_gif.item
    page = rita.get(f"/review/{item.pk}/").content.decode()
    assert 'id="frames"' in page and 'data-frame="0"' in page and 'id="play"' not in page  # no segments to play
    response = rita.post(f"/media/{item.pk}/original/", {"mode": "hold", "frame": "3"})
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert not response.content.startswith(b"GIF")
    assert Image.open(io.BytesIO(response.content)).size == SIZE  # natural size
    assert colour_of(response.content) == pytest.approx(COLOURS[3], abs=6)  # frame 3, not the first
    assert ViewEvent.objects.get(pk=response["X-View-Id"]).frame == 3
    assert AuditEvent.objects.get(action="media.original").data["frame"] == 3
    # the blurred previews are greyscale
    preview = rita.get(f"/media/{item.pk}/preview/frame-03-inspect-3/")
    assert Image.open(io.BytesIO(preview.content)).mode == "L"


def test_a_confirmed_animated_picture_reports_which_frames_were_seen(rita, held_gif, reporter_settings):
    from reports.cybertip import xml
    from reports.reporting import drafting

    item = held_gif.item
    for frame in ("1", "5"):
        view_id = rita.post(f"/media/{item.pk}/original/", {"mode": "hold", "frame": frame})["X-View-Id"]
        rita.post(f"/views/{view_id}/", json.dumps({"seconds": 1.0, "painted": True}), content_type="application/json")
    assert rita.post(f"/review/{item.pk}/decide/", {"verdict": "confirmed", "classification": "A1"}).status_code == 302
    assert item.decisions.get().viewed_frames == [1, 5]
    doc = xml.file_details_document(drafting.report_draft_build(actor=None)[0].files.get())
    seen = [p.findtext("value") for p in doc.findall("details/nameValuePair") if p.findtext("name") == "what the reviewer saw"]
    assert seen == ["viewed 2 of 8 sampled frames (at 0.3 s, 1.5 s) as still pictures"]
    assert doc.findtext("fileViewedByEsp") == "true" and xml.validate(doc) == []


def test_an_animated_picture_whose_decoding_breaks_the_memory_limit_goes_to_a_lead(api, settings):
    """Eight 2000 × 2000 frames (flat colours: a small file) decoded under a 300 MB limit: the
    child runs out, the worker does not; the item waits for a lead saying why."""
    frames = [Image.new("P", (2000, 2000), n) for n in range(8)]  # palette frames: quick to encode
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=300, optimize=False)
    assert len(out.getvalue()) < 2_000_000
    response = push(api, out.getvalue(), make_metadata("animated/large"), content_type="image/gif")
    assert response.status_code == 201, response.content
    settings.TSREVIEW_DECODE_MEMORY_BYTES = 300 * 1024 ** 2
    item = item_previews_make(item_id=Item.objects.get().pk)
    assert item.state == Item.State.ESCALATED and item.previews == {}
    assert "TSREVIEW_DECODE_MEMORY_BYTES" in item.unreviewable_reason, item.unreviewable_reason


def test_the_demo_seeds_two_videos_and_an_animated_gif_as_moving_media(scanner_token, media_root):
    """`make run`'s seeding (devtools.demo) pushes two synthetic videos and an animated GIF;
    each gets the frame strip, so a newcomer sees the video page at once."""
    from devtools.demo import moving_push
    from reports.models import Scanner

    assert moving_push(Scanner.objects.get(), start=40) == 3
    items = [item_previews_make(item_id=pk) for pk in Item.objects.order_by("pk").values_list("pk", flat=True)]
    assert [(i.mime_type, i.is_video, i.is_moving) for i in items] == [
        ("video/mp4", True, True), ("video/webm", True, True), ("image/gif", False, True)]
    assert all(i.state == Item.State.QUEUED and len(i.frame_times) >= 3 and "frame-00-still" in i.previews for i in items)
