"""Hostile media through the scanner API: each file is either accepted and previewed correctly
(upright, not blank, from the first frame) or refused with a 4xx that stores nothing; never a
5xx; and the memory that inspecting and previewing it takes stays bounded."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from reports.intake.storage import media_store
from reports.models import AuditEvent, Item, Submission
from reports.review import queue

from .factories import make_metadata, push, stored_files
from .support import hostile_media
from .support.hostile_media import ACCEPTED, REJECTED

pytestmark = pytest.mark.django_db
PREVIEWS = {"thumb", "inspect-1", "inspect-2", "inspect-3"}


@pytest.mark.parametrize("name", list(REJECTED))
def test_hostile_file_is_refused_with_a_4xx_and_nothing_is_stored(api, assert_nothing_stored, name):
    make, content_type, status, reason = REJECTED[name]
    response = push(api, make(), content_type=content_type)
    assert response.status_code == status, response.content
    assert reason in response.json()["errors"]["file"][0]
    assert_nothing_stored()


def grey(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=np.float64)


def assert_shows_the_upright_picture(preview: np.ndarray, what: str):
    """Portrait, bright above and dark below, with real contrast: not blank, not sideways, not
    upside down, not inverted."""
    height, width = preview.shape
    assert height > width, f"{what} is sideways: {width}×{height}"
    quarter = max(1, height // 4)
    top, bottom = preview[:quarter].mean(), preview[-quarter:].mean()
    assert top - bottom > 100, f"{what}: upper quarter {top:.0f}, lower quarter {bottom:.0f}"


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_hostile_but_valid_file_is_accepted_and_previewed_upright(api, media_root, django_capture_on_commit_callbacks, name):
    make, content_type = ACCEPTED[name]
    data = make()
    with django_capture_on_commit_callbacks(execute=True):
        response = push(api, data, content_type=content_type)
    assert response.status_code == 201, response.content
    item = Item.objects.get()
    assert item.state == Item.State.QUEUED
    assert item.mime_type == content_type
    assert item.height > item.width, "the recorded size is the upright one, as the previews are"
    assert media_store().get(item.original_blob) == data
    if item.frames == 1:
        assert set(item.previews) == PREVIEWS
        shown = item.previews
    else:  # animated: moving media, a sheet of sampled frames; the first frame's are the picture
        assert item.is_moving and len(item.frame_times) >= 2 and item.frame_times[0] == 0
        assert set(item.previews) == PREVIEWS | {f"frame-{n:02d}-{kind}" for n in range(len(item.frame_times))
                                                 for kind in ("inspect-1", "inspect-2", "inspect-3", "still")}
        shown = {kind: name_ for kind, name_ in item.previews.items() if kind.startswith("frame-00-")}
    for kind, name_ in shown.items():
        assert (media_root / name_).is_file()
        assert_shows_the_upright_picture(grey(media_store().get_part(name_, kind)), kind)
    assert api.get(f"/api/v1/submissions/{response.json()['id']}").json()["status"] == "queued"


@pytest.mark.parametrize("name", ["polyglot-jpeg-html", "polyglot-png-zip"])
def test_polyglot_original_is_served_as_its_image_type_in_a_sandbox(
        api, client, reviewer, django_capture_on_commit_callbacks, name):
    make, content_type = ACCEPTED[name]
    data = make()
    with django_capture_on_commit_callbacks(execute=True):
        assert push(api, data, content_type=content_type).status_code == 201
    claim = queue.item_claim(user=reviewer)
    client.force_login(reviewer)
    for response in (client.post(f"/media/{claim.item_id}/original/", {"mode": "hold"}),
                     client.get(f"/media/{claim.item_id}/preview/thumb/")):
        assert response.status_code == 200
        assert response["Content-Type"] in (content_type, "image/jpeg")
        assert response["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in response["Content-Security-Policy"]
        assert "default-src 'none'" in response["Content-Security-Policy"]
    original = client.post(f"/media/{claim.item_id}/original/", {"mode": "hold"})
    assert original["Content-Type"] == content_type and original.content == data


def test_a_rejected_push_after_an_accepted_one_stores_nothing_more(api, media_root, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert push(api, hostile_media.cmyk_jpeg()).status_code == 201
    files, events = sorted(stored_files(media_root)), AuditEvent.objects.count()
    for number, name in enumerate(REJECTED):
        make, content_type, status, _ = REJECTED[name]
        metadata = make_metadata(f"hostile/{number}")
        assert push(api, make(), metadata, content_type=content_type).status_code == status
    assert Item.objects.count() == 1 and Submission.objects.count() == 1
    assert sorted(stored_files(media_root)) == files
    assert AuditEvent.objects.count() == events


# --- Memory, measured in a fresh process so the peak belongs to this work alone ------------------

MEASURE = """
import json, sys
import django
django.setup()
from reports.intake.media import MediaRejected, image_inspect, previews_make

def peak_kb():
    # VmHWM belongs to this process's memory alone; ru_maxrss would include the parent's
    # resident size at fork time.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

before = peak_kb()
results = []
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    try:
        image_inspect(data, claimed_type="")
        previews_make(data)
        outcome = "accepted"
    except MediaRejected as exc:
        outcome = exc.status
    results.append([path.rsplit("/", 1)[-1], outcome, (peak_kb() - before) // 1024])
    del data
print(json.dumps(results))
"""


def peak_growth_mb(paths) -> list:
    """[name, outcome, peak resident growth in MB since the start, cumulative] per file."""
    result = subprocess.run([sys.executable, "-c", MEASURE, *map(str, paths)], check=False, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "DJANGO_SETTINGS_MODULE": "tsreview.settings"})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_inspecting_and_previewing_every_hostile_file_needs_little_memory(tmp_path):
    paths = []
    for name, (make, *_) in {**REJECTED, **ACCEPTED}.items():
        paths.append(tmp_path / name)
        paths[-1].write_bytes(make())
    results = peak_growth_mb(paths)
    outcomes = {name: outcome for name, outcome, _ in results}
    assert outcomes == {**{n: REJECTED[n][2] for n in REJECTED}, **{n: "accepted" for n in ACCEPTED}}
    # Together they announce gigapixels, thousands of frames and 400 MB of text; decoding any
    # of that would need gigabytes. Refusing on headers and previewing small files needs little.
    assert results[-1][2] < 32, results


@pytest.mark.parametrize("make, decoded_mb", [
    (hostile_media.png_16_bit_at_the_limit, 98),  # 49 Mpx × 2 bytes
    (hostile_media.rgba_png_at_the_limit, 196),  # 49 Mpx × 4 bytes
], ids=["16-bit-png", "rgba-png"])
def test_a_small_file_at_the_pixel_limit_needs_at_most_a_few_decoded_frames_of_memory(tmp_path, make, decoded_mb):
    path = tmp_path / "at-the-limit.png"
    path.write_bytes(make())
    assert path.stat().st_size < 400_000
    [(_, outcome, grown_mb)] = peak_growth_mb([path])
    assert outcome == "accepted"
    # The frame is decoded whole once; every later step works on a reduced copy. (Converting the
    # whole frame first made the 16-bit one need about 1 GB.)
    assert grown_mb < 3 * decoded_mb, grown_mb
