"""Hostile videos (issue 12, point 5) through the scanner API and through the worker: each is
refused with a 4xx naming what is wrong (nothing stored), or taken and, when its decoding
breaks a limit, marked unreviewable by machine and sent to a lead. Probing and decoding run in
a child under the decoding limits; the child's own peak memory on each file is measured (it
reports its VmHWM) and must stay far under the limit. Synthetic videos only
(tests/support/hostile_video.py)."""

import pytest

from reports.intake import decode
from reports.intake.previews import item_previews_make
from reports.intake.storage import media_store
from reports.models import AuditEvent, Item

from .factories import make_metadata, push
from .support import hostile_video as hv

pytestmark = pytest.mark.django_db

REFUSED = {
    # name: (maker, status, words the refusal must contain)
    "declared-100000x100000": (lambda: hv.declared_size(100_000, 100_000), 413, "TSREVIEW_VIDEO_MAX_PIXELS"),
    "declared-16000x16000": (lambda: hv.declared_size(16_000, 16_000), 413, "TSREVIEW_VIDEO_MAX_PIXELS"),
    "a-billion-frames-per-second": (hv.billion_fps, 413, "TSREVIEW_VIDEO_MAX_FPS"),
    "frames-of-a-hundred-million-seconds": (hv.billion_seconds, 413, "TSREVIEW_VIDEO_MAX_SECONDS"),
    "stsz-of-a-billion-entries": (hv.huge_stsz, 400, "truncated or corrupt"),
    "a-stream-that-never-yields-a-frame": (hv.never_a_frame, 400, "no frame of the video decodes"),
    "audio-only": (hv.audio_only, 415, "no video stream"),
    "truncated": (hv.truncated, 400, "truncated or corrupt"),
    "no-moov": (hv.without_moov, 400, "truncated or corrupt"),
}


@pytest.fixture(scope="module")
def made():
    """Each hostile file made once for the module."""
    return {name: make() for name, (make, *_) in REFUSED.items()} | {"100000-tiny-frames": hv.tiny_frames()}


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_hostile_video_is_refused_naming_the_problem_and_nothing_is_stored(api, made, assert_nothing_stored, name):
    _, status, words = REFUSED[name]
    response = push(api, made[name], make_metadata(f"hostile/{name}"), content_type="application/octet-stream")
    assert response.status_code == status, response.content
    assert words in response.json()["errors"]["file"][0]
    assert_nothing_stored()


def test_100000_tiny_frames_over_the_frame_limit_are_refused_naming_it(api, made, settings, assert_nothing_stored):
    settings.TSREVIEW_VIDEO_MAX_FRAMES = 50_000
    response = push(api, made["100000-tiny-frames"], make_metadata("hostile/tiny"), content_type="video/mp4")
    assert response.status_code == 413
    assert "100000 frames" in response.json()["errors"]["file"][0]
    assert "TSREVIEW_VIDEO_MAX_FRAMES" in response.json()["errors"]["file"][0]
    assert_nothing_stored()


def test_100000_tiny_frames_within_the_limits_whose_decoding_breaks_the_cpu_limit_go_to_a_lead(api, made, settings, lena):
    """55 minutes of 16 × 16 frames is a video within every limit of the file, so it is taken;
    decoding all of it takes seconds of CPU, more than this test allows (1 s): the child is
    stopped, the worker goes on, and the item waits for a lead saying why."""
    settings.TSREVIEW_DECODE_CPU_SECONDS = 1
    response = push(api, made["100000-tiny-frames"], make_metadata("hostile/tiny"), content_type="video/mp4")
    assert response.status_code == 201, response.content
    item = Item.objects.get()
    assert item.frames == 100_000 and item.duration_seconds == pytest.approx(3333.3, abs=0.1)
    item_previews_make(item_id=item.pk)  # what the Celery worker does
    item.refresh_from_db()
    assert item.state == Item.State.ESCALATED and item.previews == {}
    assert "TSREVIEW_DECODE_CPU_SECONDS" in item.unreviewable_reason
    assert AuditEvent.objects.get(action="item.unreviewable").data["reason"] == item.unreviewable_reason
    page = lena.get(f"/review/{item.pk}/").content.decode()
    assert 'id="unreviewable"' in page and "TSREVIEW_DECODE_CPU_SECONDS" in page


def test_the_intake_probe_runs_under_the_decoding_memory_limit_not_in_the_web_process(api, settings, assert_nothing_stored):
    """A 4K video's first frame needs more memory than this test's limit allows: the probe's
    child fails, and the push is refused naming the limit; the web process is untouched."""
    from devtools.synthetic import synthetic_video

    video = synthetic_video(44, seconds=0.5, size=(3840, 2160), fps=4)
    settings.TSREVIEW_DECODE_MEMORY_BYTES = 420 * 1024 ** 2
    response = push(api, video, make_metadata("hostile/probe"), content_type="video/mp4")
    assert response.status_code == 413, response.content
    message = response.json()["errors"]["file"][0]
    assert "inspecting the video broke a limit" in message and "TSREVIEW_DECODE_MEMORY_BYTES" in message
    assert_nothing_stored()
    settings.TSREVIEW_DECODE_MEMORY_BYTES = 3 * 1024 ** 3  # within the default limit it is taken
    assert push(api, video, make_metadata("hostile/probe"), content_type="video/mp4").status_code == 201


def test_the_decoding_child_needs_little_memory_on_every_hostile_video(made, media_root, settings):
    """Each file stored, then probed and (where the probe passes) decoded in the limited child,
    as intake and the worker do, under the configured limit; the child reports its peak
    resident memory (VmHWM). The files declare gigapixels, a billion frames per second, a 4-GiB
    sample table and 100,000 frames; the child's peak stays under 200 MB (about 55 MB of it is
    the forked interpreter with PyAV, NumPy and Pillow loaded). (Before FFmpeg's decoders were
    given max_pixels, the declared 16000 × 16000 one took 1.2 GB while the container was
    probed.) The derivatives of 100,000 frames take about 11 s of CPU here, so those are
    measured on 20,000 of the same frames: at most 2 × 48 frames are ever held."""
    store = media_store()
    files = made | {"20000-tiny-frames": hv.tiny_frames(20_000)}
    expected = {name: ("rejected", status) for name, (_, status, _) in REFUSED.items()}
    memory, peaks = settings.TSREVIEW_DECODE_MEMORY_BYTES, {}
    for name, data in files.items():
        writer = store.writer()
        writer.write(data)
        blob = writer.finish()
        kind, value, used, _ = decode.child_run("video_inspect", blob, data[:64], len(data),
                                                {"md5": "", "sha1": "", "sha256": ""}, "", memory=memory, cpu=30)
        assert (kind, value[0] if kind == "rejected" else None) == expected.get(name, ("ok", None)), (name, kind, value)
        peaks[name] = used["peak"]
        if name == "20000-tiny-frames":
            kind, value, used, _ = decode.child_run("video_previews", blob, 48, memory=memory, cpu=60)
            assert kind == "ok" and len(value[1]) >= 2, (name, kind, value)
            peaks[name + " (derivatives)"] = used["peak"]
        store.delete(blob)
    print(f"\nchild peak resident memory (MB) under a {memory >> 20} MB limit:",
          {name: peak >> 20 for name, peak in peaks.items()})
    assert all(0 < peak < min(200 * 1024 ** 2, memory) for peak in peaks.values()), peaks


def test_decoding_works_from_a_process_like_a_celery_prefork_worker(monkeypatch, media_root, settings):
    """Celery's prefork pool (billiard) marks its worker processes daemonic, and multiprocessing
    refuses children to those; their authentication key is billiard's, which refuses to be
    pickled. The decoding child (forked by the forkserver) must start anyway."""
    import multiprocessing
    import os

    from billiard.process import AuthenticationString

    from devtools.synthetic import synthetic_video

    monkeypatch.setitem(multiprocessing.current_process()._config, "daemon", True)
    monkeypatch.setitem(multiprocessing.current_process()._config, "authkey", AuthenticationString(os.urandom(32)))
    writer = media_store().writer()
    writer.write(synthetic_video(45, seconds=1))
    previews, times, pdqs = decode.video_previews_limited(writer.finish())
    assert times and "frame-00-still" in previews and len(pdqs) == len(times)
    assert multiprocessing.current_process()._config["daemon"] is True
