"""Moving media (DESIGN §5b): a scanner pushes videos through the same API; they are probed
and decoded with PyAV, refused with the limit named, previewed frame first, and revealed one
frame's still at a time; the video's own bytes never reach a browser. Synthetic videos only."""

import io
import json

import av
import pytest
from PIL import Image

from devtools.synthetic import synthetic_video
from reports.intake.previews import item_previews_make
from reports.models import AuditEvent, Item, ViewEvent
from reports.review import queue

from .factories import make_metadata, push
from .support.hostile_video import audio_only

pytestmark = pytest.mark.django_db


def push_video(api, data, external_id="video/1", content_type="video/mp4"):
    """Push as a scanner; then what the worker does on commit (the test's transaction never commits)."""
    response = push(api, data, make_metadata(external_id), content_type=content_type)
    if response.status_code in (200, 201):
        item_previews_make(item_id=Item.objects.get(sha256=response.json()["item"]).pk)
    return response


@pytest.fixture(scope="module")
def mp4():
    return synthetic_video(1, seconds=6, cuts=2, audio=True)


@pytest.fixture(scope="module")
def webm():
    return synthetic_video(2, seconds=4, codec="libvpx-vp9", container="webm", audio=True)


@pytest.mark.both_stores
@pytest.mark.parametrize("kind", ["mp4", "webm"])
def test_a_video_is_taken_hashed_and_previewed_frame_first(api, request, kind):
    data = request.getfixturevalue(kind)
    response = push_video(api, data, content_type="application/octet-stream")
    assert response.status_code == 201, response.json()
    item = Item.objects.get()
    assert item.mime_type == {"mp4": "video/mp4", "webm": "video/webm"}[kind]
    assert (item.width, item.height) == (320, 240) and item.duration_seconds == pytest.approx(6 if kind == "mp4" else 4, abs=0.1)
    assert item.state == Item.State.QUEUED and item.pdq
    times = item.frame_times
    assert 3 <= len(times) <= 48 and times == sorted(times) and times[0] == 0
    assert len(item.frame_pdqs) == len(times) and all(len(h) == 64 for h in item.frame_pdqs)
    # the contact sheet as the item's previews, and each sampled frame blurred and as a still
    assert {"thumb", "inspect-1", "inspect-2", "inspect-3"} <= set(item.previews)
    assert all(f"frame-{n:02d}-still" in item.previews and f"frame-{n:02d}-inspect-3" in item.previews
               for n in range(len(times)))


def test_scene_changes_are_sampled_besides_the_regular_interval(settings, api):
    settings.TSREVIEW_VIDEO_SAMPLED_FRAMES = 4  # a regular frame every 1/2 of the video, plus cuts
    push_video(api, synthetic_video(3, seconds=6, cuts=2))
    times = Item.objects.get().frame_times
    assert len(times) == 4
    assert any(abs(t - 2.0) < 0.15 or abs(t - 4.0) < 0.15 for t in times)  # a cut (every 2 s) made it in


@pytest.mark.parametrize("setting, value, field_text", [
    ("TSREVIEW_VIDEO_MAX_SECONDS", 2, "TSREVIEW_VIDEO_MAX_SECONDS"),
    ("TSREVIEW_VIDEO_MAX_PIXELS", 320 * 200, "TSREVIEW_VIDEO_MAX_PIXELS"),
    ("TSREVIEW_VIDEO_MAX_FPS", 5, "TSREVIEW_VIDEO_MAX_FPS"),
    ("TSREVIEW_VIDEO_MAX_FRAMES", 10, "TSREVIEW_VIDEO_MAX_FRAMES"),
    ("TSREVIEW_VIDEO_MAX_STREAMS", 1, "TSREVIEW_VIDEO_MAX_STREAMS"),
])
def test_each_limit_refuses_with_413_naming_it_and_stores_nothing(api, webm, settings, assert_nothing_stored,
                                                                 setting, value, field_text):
    setattr(settings, setting, value)
    response = push_video(api, webm, content_type="video/webm")
    assert response.status_code == 413
    assert field_text in response.json()["errors"]["file"][0]
    assert_nothing_stored()


def without_moov(data: bytes) -> bytes:
    return data.replace(b"moov", b"zzzz")  # an unknown box ("free" would still be read: FFmpeg looks inside)


@pytest.mark.parametrize("make, status", [
    (lambda v: v[: len(v) // 3], 400),          # truncated: the index is at the end
    (without_moov, 400),                        # no movie box at all
    (lambda v: v[:64], 400),                    # a header and nothing else
    (lambda v: audio_only(), 415),              # no video stream
    (lambda v: b"\x1a\x45\xdf\xa3" + b"\x00" * 200, 400),  # Matroska magic, nothing behind it
])
def test_broken_videos_are_refused_and_nothing_is_stored(api, mp4, assert_nothing_stored, make, status):
    response = push_video(api, make(mp4))
    assert response.status_code == status, response.json()
    assert response.json()["errors"]["file"]
    assert_nothing_stored()


def test_video_bytes_claimed_as_an_image_are_refused(api, mp4, assert_nothing_stored):
    response = push_video(api, mp4, content_type="image/jpeg")
    assert response.status_code == 415 and "video" in response.json()["errors"]["file"][0]
    assert_nothing_stored()


@pytest.fixture
def held_video(api, mp4, reviewer, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    push_video(api, mp4)
    return queue.item_claim(user=reviewer)


def test_a_reveal_sends_one_frame_still_at_natural_size_never_the_video(rita, held_video, mp4):
    item = held_video.item
    response = rita.post(f"/media/{item.pk}/original/", {"mode": "hold", "frame": "2"})
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert response.content != mp4 and mp4[4:8] not in response.content[:16]
    assert Image.open(io.BytesIO(response.content)).size == (320, 240)
    view = ViewEvent.objects.get(pk=response["X-View-Id"])
    assert view.frame == 2
    assert AuditEvent.objects.get(action="media.original").data["frame"] == 2
    # a frame that was not sampled does not exist
    assert rita.post(f"/media/{item.pk}/original/", {"mode": "hold", "frame": "99"}).status_code == 404


def test_no_response_before_a_reveal_carries_the_video_or_an_unblurred_frame(rita, held_video, mp4):
    item = held_video.item
    page = rita.get(f"/review/{item.pk}/")
    assert page.status_code == 200 and 'id="frames"' in page.content.decode()
    bodies = [rita.get(f"/media/{item.pk}/preview/{kind}/").content
              for kind in ["thumb", "inspect-3", "frame-00-inspect-3", "frame-01-inspect-2"]]
    from reports.intake.storage import media_store

    stills = {media_store().get(name) for kind, name in item.previews.items() if kind.endswith("-still")}
    assert all(body not in stills and body != mp4 for body in bodies)
    assert all(Image.open(io.BytesIO(body)).mode == "L" for body in bodies)  # greyscale previews
    assert "frame-00-still" in item.previews  # made, and only ever sent by a reveal
    assert rita.get(f"/media/{item.pk}/preview/frame-00-still/").status_code == 404
    assert not ViewEvent.objects.exists()


def test_a_video_is_confirmed_after_a_painted_look_at_one_frame(rita, held_video):
    item = held_video.item
    view_id = rita.post(f"/media/{item.pk}/original/", {"mode": "hold", "frame": "1"})["X-View-Id"]
    rita.post(f"/views/{view_id}/", json.dumps({"seconds": 1.2, "painted": True}), content_type="application/json")
    response = rita.post(f"/review/{item.pk}/decide/", {"verdict": "confirmed", "classification": "A2"})
    assert response.status_code == 302
    assert item.decisions.get().viewed_unblurred is True


def test_a_report_on_a_video_says_which_frames_were_seen(rita, held_video, reviewer, reporter_settings):
    from reports.cybertip import xml
    from reports.reporting import drafting

    item = held_video.item
    for frame in ("0", "2"):
        view_id = rita.post(f"/media/{item.pk}/original/", {"mode": "hold", "frame": frame})["X-View-Id"]
        rita.post(f"/views/{view_id}/", json.dumps({"seconds": 1.0, "painted": True}), content_type="application/json")
    rita.post(f"/review/{item.pk}/decide/", {"verdict": "confirmed", "classification": "A1"})
    item.refresh_from_db()
    assert item.decisions.get().viewed_frames == [0, 2]
    report_file = drafting.report_draft_build(actor=None)[0].files.get()
    doc = xml.file_details_document(report_file)
    times = item.frame_times
    seen = [pair.findtext("value") for pair in doc.findall("details/nameValuePair") if pair.findtext("name") == "what the reviewer saw"]
    assert seen == [f"viewed 2 of {len(times)} sampled frames (at {times[0]:.1f} s, {times[2]:.1f} s) as still pictures; "
                    "no video segment played; no sound"]
    assert doc.findtext("fileViewedByEsp") == "true" and doc.findtext("fileName").endswith(".mp4")
    assert xml.validate(doc) == []


def test_a_video_hash_type_from_a_scanner_is_taken(api, mp4):
    metadata = make_metadata("video/vpdq")
    metadata["matches"][0].update(hash_type="vpdq", hash_value="00ff" * 40)
    assert push(api, mp4, metadata, content_type="video/mp4").status_code == 201


def test_a_played_segment_is_a_short_reduced_clip_without_sound(rita, held_video, mp4, settings):
    settings.TSREVIEW_VIDEO_SEGMENT_SECONDS = 2
    item = held_video.item
    response = rita.post(f"/media/{item.pk}/segment/", {"mode": "hold", "frame": "1"})
    assert response.status_code == 200 and response["Content-Type"] == "video/webm"
    assert response["Cache-Control"] == "no-store, private" and response.content != mp4
    with av.open(io.BytesIO(response.content)) as clip:
        assert [s.type for s in clip.streams] == ["video"]  # no audio track at all
        assert clip.duration / av.time_base <= 2.1
        assert max(clip.streams.video[0].codec_context.width, clip.streams.video[0].codec_context.height) <= 480
    view = ViewEvent.objects.get(pk=response["X-View-Id"])
    assert view.segment and view.frame == 1
    event = AuditEvent.objects.get(action="media.segment")
    assert event.data["sound"] is False and event.data["from"] == item.frame_times[1]


def test_a_segment_is_for_the_holder_and_leads_only(client, held_video, second_reviewer, lead):
    client.force_login(second_reviewer)
    assert client.post(f"/media/{held_video.item_id}/segment/", {"frame": "0"}).status_code == 404
    assert AuditEvent.objects.filter(action="media.denied", data__what="segment").exists()
    client.force_login(lead)
    assert client.post(f"/media/{held_video.item_id}/segment/", {"frame": "0"}).status_code == 200


def test_a_report_says_which_segments_were_played_without_sound(rita, held_video, reporter_settings):
    from reports.cybertip import xml
    from reports.reporting import drafting

    item = held_video.item
    view_id = rita.post(f"/media/{item.pk}/segment/", {"mode": "hold", "frame": "0"})["X-View-Id"]
    rita.post(f"/views/{view_id}/", json.dumps({"seconds": 1.0, "painted": True}), content_type="application/json")
    assert rita.post(f"/review/{item.pk}/decide/", {"verdict": "confirmed", "classification": "A1"}).status_code == 302
    decision = item.decisions.get()
    assert decision.viewed_unblurred and decision.viewed_frames == [] and decision.played_segments == [[0.0, 1.0, False]]
    doc = xml.file_details_document(drafting.report_draft_build(actor=None)[0].files.get())
    assert "played 00:00:00–00:00:01 without sound" in [p.findtext("value") for p in doc.findall("details/nameValuePair")]


@pytest.fixture(scope="module")
def video_4k():
    return synthetic_video(9, seconds=4, size=(3840, 2160), fps=12)


def test_a_video_that_breaks_the_decoding_limits_goes_to_a_lead_and_the_worker_survives(api, video_4k, settings, lena):
    """Decoding runs in a child process under a memory limit: the child dies, this process
    (the worker) does not; the item waits for a lead, saying why, and no sweep retries it."""
    settings.TSREVIEW_DECODE_MEMORY_BYTES = 500 * 1024 ** 2
    response = push_video(api, video_4k)
    assert response.status_code == 201
    item = Item.objects.get()
    assert item.state == Item.State.ESCALATED and item.previews == {} and item.frame_times == []
    assert "TSREVIEW_DECODE_MEMORY_BYTES" in item.unreviewable_reason
    assert AuditEvent.objects.get(action="item.unreviewable").data["reason"] == item.unreviewable_reason
    from reports.intake.previews import items_without_previews

    assert item.pk not in items_without_previews(older_than_seconds=0)
    page = lena.get(f"/review/{item.pk}/").content.decode()
    assert 'id="unreviewable"' in page and "TSREVIEW_DECODE_MEMORY_BYTES" in page


def test_a_decoding_thread_that_cannot_start_is_the_memory_limit_not_a_corrupt_file(monkeypatch):
    """FFmpeg says EAGAIN when a decoding thread cannot start in the limited child's address
    space (the 4K video above does that on Python 3.13; on 3.11 it runs out in a frame buffer
    first). The lead is told which limit, not that the file is corrupt."""
    from reports.intake import video
    from reports.intake.media import MediaRejected

    data = synthetic_video(4, seconds=2)
    assert video.frames_sample(data, limit=4)  # it decodes

    def thread_refused(frame):
        raise av.error.BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(video, "_tiny", thread_refused)  # inside the decoding loop, as FFmpeg's refusal is
    with pytest.raises(MemoryError, match="a decoding thread could not start"):
        video.frames_sample(data, limit=4)

    def corrupt(frame):
        raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")

    monkeypatch.setattr(video, "_tiny", corrupt)
    with pytest.raises(MediaRejected, match="no frame of the video decodes"):
        video.frames_sample(data, limit=4)


def test_a_4k_video_within_the_default_limits_is_previewed(api, video_4k):
    assert push_video(api, video_4k).status_code == 201
    item = Item.objects.get()
    assert item.state == Item.State.QUEUED and item.previews["frame-00-still"]


@pytest.mark.both_stores
def test_a_video_upload_streams_into_the_store_in_sealed_chunks(api, monkeypatch, settings, media_root):
    """The file part is hashed and encrypted chunk by chunk as it arrives (chunks made small
    here so that a small video spans many): larger than the in-memory upload limit, it is
    taken; what is stored is only ciphertext; and it reads back byte for byte."""
    from reports.intake import storage

    monkeypatch.setattr(storage, "CHUNK", 4096)
    video = synthetic_video(11, seconds=3, size=(640, 360))
    settings.TSREVIEW_MAX_UPLOAD_BYTES = len(video) // 4  # a picture this large would be refused
    response = push_video(api, video)
    assert response.status_code == 201, response.json()
    item = Item.objects.get()
    path = media_root / item.original_blob
    sealed = path.read_bytes()
    assert sealed.startswith(storage.MAGIC2) and len(sealed) > len(video)
    assert not any(video[n:n + 64] in sealed for n in range(0, len(video) - 64, 997))  # no plaintext run
    assert storage.media_store().get(item.original_blob) == video
    assert item.sha256 == response.json()["item"] and item.size_bytes == len(video)
    assert item.state == Item.State.QUEUED and item.frame_times  # the worker's child read it chunk by chunk
    assert not [p for p in media_root.rglob("*.tmp")]


@pytest.mark.both_stores
def test_a_refused_streamed_video_leaves_nothing_behind(api, monkeypatch, settings, assert_nothing_stored):
    from reports.intake import storage

    monkeypatch.setattr(storage, "CHUNK", 4096)
    settings.TSREVIEW_VIDEO_MAX_SECONDS = 1
    response = push_video(api, synthetic_video(12, seconds=3))
    assert response.status_code == 413 and "TSREVIEW_VIDEO_MAX_SECONDS" in response.json()["errors"]["file"][0]
    assert_nothing_stored()


def test_a_picture_over_the_upload_limit_is_still_refused_after_streaming(api, settings, assert_nothing_stored):
    from devtools.synthetic import synthetic_image

    data = synthetic_image(3, size=(800, 600))
    settings.TSREVIEW_MAX_UPLOAD_BYTES = len(data) - 1
    response = push(api, data, make_metadata("big-picture"))
    assert response.status_code == 413 and response.json()["errors"]["file"]
    assert_nothing_stored()


def test_a_lead_sends_a_video_report_whose_file_details_say_what_was_seen(
        rita, lena, held_video, mp4, cybertip, django_capture_on_commit_callbacks):
    """End to end at the fake CyberTipline: the original video is uploaded as it is (its MD5 and
    size), and the fileinfo sent says which frames were looked at and what was played."""
    from reports.models import Report

    item = held_video.item
    for frame, path in (("1", "original"), ("2", "segment")):
        view_id = rita.post(f"/media/{item.pk}/{path}/", {"mode": "hold", "frame": frame})["X-View-Id"]
        rita.post(f"/views/{view_id}/", json.dumps({"seconds": 1.0, "painted": True}), content_type="application/json")
    assert rita.post(f"/review/{item.pk}/decide/", {"verdict": "confirmed", "classification": "A1"}).status_code == 302
    lena.post("/reports/build/")
    report = Report.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        assert lena.post(f"/reports/{report.pk}/approve/").status_code == 302
    report.refresh_from_db()
    assert report.state == Report.State.FINISHED
    [sent] = cybertip.finished_reports()[0].files.values()
    times = item.frame_times
    assert sent["md5"] == item.md5 and sent["size"] == len(mp4)
    assert (f"viewed 1 of {len(times)} sampled frames (at {times[1]:.1f} s) as still pictures; "
            f"played 00:00:0{round(times[2])}–00:00:0{round(times[2] + 1)} without sound").encode() in sent["details"]


def test_sound_is_its_own_act_metered_apart(rita, held_video, reviewer):
    item = held_video.item
    quiet = rita.post(f"/media/{item.pk}/segment/", {"mode": "hold", "frame": "0"})
    loud = rita.post(f"/media/{item.pk}/segment/", {"mode": "hold", "frame": "0", "sound": "1"})
    with av.open(io.BytesIO(quiet.content)) as clip:
        assert [s.type for s in clip.streams] == ["video"]
    with av.open(io.BytesIO(loud.content)) as clip:
        assert sorted(s.type for s in clip.streams) == ["audio", "video"]
    for response, seconds in ((quiet, 1.5), (loud, 2.0)):
        rita.post(f"/views/{response['X-View-Id']}/", json.dumps({"seconds": seconds, "painted": True}),
                  content_type="application/json")
    from reports.models import ExposureDay

    day = ExposureDay.objects.get(user=reviewer)
    assert (day.unblurred_seconds, day.audio_seconds) == (3.5, 2.0)
    assert ViewEvent.objects.get(pk=loud["X-View-Id"]).sound is True
    assert [e.data["sound"] for e in AuditEvent.objects.filter(action="media.segment").order_by("id")] == [False, True]
    assert rita.post(f"/review/{item.pk}/decide/", {"verdict": "confirmed", "classification": "A1"}).status_code == 302
    assert [seg[2] for seg in item.decisions.get().played_segments] == [False, True]


def test_a_video_polyglot_is_reviewed_as_video_and_its_bytes_never_reach_a_page(api, rita, reviewer, settings):
    """An MP4 with an HTML page and a ZIP header after it: the video decodes, so it is taken;
    a reveal still sends only a server-made still of a frame, never the file."""
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    polyglot = synthetic_video(13, seconds=2) + b"<html><script>alert(1)</script></html>" + b"PK\x03\x04" + b"\x00" * 26
    assert push_video(api, polyglot).status_code == 201
    item = queue.item_claim(user=reviewer).item
    response = rita.post(f"/media/{item.pk}/original/", {"mode": "hold", "frame": "0"})
    assert response["Content-Type"] == "image/jpeg" and b"<script>" not in response.content
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"


def test_a_scanners_vpdq_and_tmk_matches_are_shown_with_their_distance(api, mp4, rita, reviewer, settings):
    """tsreview computes no vPDQ of its own (the vpdq package has no wheel; docs/architecture.md):
    a scanner's vpdq and tmk_pdqf matches are kept and shown as it reported them, distance and
    threshold included, beside the PDQ of each sampled frame tsreview keeps."""
    import re

    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    metadata = make_metadata("video/vpdq-shown")
    metadata["matches"] = [
        {"hash_type": "vpdq", "hash_value": "ab" * 32, "list": "NCMEC", "list_entry_id": "v-7", "distance": 14, "threshold": 31},
        {"hash_type": "tmk_pdqf", "hash_value": "cd" * 40, "list": "Partner", "distance": 0.93, "threshold": 0.7},
    ]
    assert push(api, mp4, metadata, content_type="video/mp4").status_code == 201
    item = item_previews_make(item_id=Item.objects.get().pk)
    assert len(item.frame_pdqs) == len(item.frame_times) >= 2
    queue.item_claim(user=reviewer)
    page = re.sub(r"\s+", " ", rita.get(f"/review/{item.pk}/").content.decode())
    assert re.search(r'<td>NCMEC</td><td title="(ab){32}">vpdq</td> <td>14 / 31</td>', page)
    assert re.search(r'<td>Partner</td><td title="(cd){40}">tmk_pdqf</td> <td>0.93 / 0.7</td>', page)  # not rounded to 0.9


def test_a_segment_is_encoded_once_and_read_back_at_later_plays(rita, held_video, monkeypatch, settings, media_root):
    """The first play of a frame's segment encodes it and keeps it encrypted with the item's
    derivatives; a second play sends the same clip without encoding in the request; the clip is
    never a preview; a purge destroys it with the rest."""
    from reports.review import reveal

    settings.TSREVIEW_VIDEO_SEGMENT_SECONDS = 2
    item = held_video.item
    first = rita.post(f"/media/{item.pk}/segment/", {"mode": "hold", "frame": "1"})
    item.refresh_from_db()
    [kind] = [k for k in item.previews if k.startswith("segment-")]
    assert kind == "segment-01-colour-muted-2s" and (media_root / item.previews[kind]).is_file()
    assert first.content not in (media_root / item.previews[kind]).read_bytes()  # stored encrypted

    def no_encoding(*args, **kwargs):
        raise AssertionError("encoded again")

    monkeypatch.setattr(reveal, "segment_make", no_encoding)
    second = rita.post(f"/media/{item.pk}/segment/", {"mode": "hold", "frame": "1"})
    assert second.status_code == 200 and second.content == first.content
    assert ViewEvent.objects.filter(segment=True).count() == 2  # each play is still its own view
    assert rita.get(f"/media/{item.pk}/preview/{kind}/").status_code == 404
    from reports.reporting.preservation import _media_delete

    _media_delete(item, item.created_at)
    assert not (media_root / item.previews[kind]).exists()


@pytest.mark.parametrize("codec, container, mime", [
    ("libvpx", "webm", "video/webm"),        # VP8
    ("libsvtav1", "webm", "video/webm"),     # AV1 (decoded by dav1d)
    ("libx265", "mp4", "video/mp4"),         # HEVC
])
def test_vp8_av1_and_hevc_videos_are_taken_and_previewed(api, codec, container, mime):
    video = synthetic_video(46, seconds=1.5, size=(192, 128), codec=codec, container=container, cuts=1)
    response = push_video(api, video, external_id=f"video/{codec}", content_type="application/octet-stream")
    assert response.status_code == 201, response.json()
    item = Item.objects.get()
    assert item.mime_type == mime and (item.width, item.height) == (192, 128)
    assert item.state == Item.State.QUEUED and len(item.frame_times) >= 2 and "frame-00-still" in item.previews
