"""Every kind of bad push gets a 4xx naming the field and the reason, and stores nothing."""

import copy
import io
import struct
import subprocess
import sys
import zlib

import pytest
from PIL import Image

from devtools.synthetic import synthetic_image

from .factories import make_metadata, push

pytestmark = pytest.mark.django_db


def with_change(path: str, value):
    """The DESIGN §3 example with one field set (value DELETE removes it)."""
    metadata = copy.deepcopy(make_metadata())
    *parents, last = path.split(".")
    node = metadata
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is DELETE:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return metadata


DELETE = object()

BAD_METADATA = [
    ("external_id", DELETE, "metadata.external_id"),
    ("external_id", 81723, "metadata.external_id"),
    ("external_id", "", "metadata.external_id"),
    ("observed_at", "yesterday", "metadata.observed_at"),
    ("observed_at", "2026-11-20T12:00:00", "metadata.observed_at"),  # no time zone
    ("observed_at", "2999-01-01T00:00:00Z", "metadata.observed_at"),  # the future
    ("matches", [], "metadata.matches"),
    ("matches", "pdq", "metadata.matches"),
    ("matches.0.hash_type", "md6", "metadata.matches[0].hash_type"),
    ("matches.0.hash_value", "not-hex", "metadata.matches[0].hash_value"),
    ("matches.0.distance", "12", "metadata.matches[0].distance"),
    ("matches.0.distance", -1, "metadata.matches[0].distance"),
    ("matches.0.list", DELETE, "metadata.matches[0].list"),
    ("matches.0.weight", 3, "metadata.matches[0].weight"),
    ("provenance", DELETE, "metadata.provenance"),
    ("provenance.source_type", "telepathy", "metadata.provenance.source_type"),
    ("provenance.location_url", "not a url", "metadata.provenance.location_url"),
    ("provenance.page_url", "ftp://host.example/x", "metadata.provenance.page_url"),
    ("provenance.publicly_available", "yes", "metadata.provenance.publicly_available"),
    ("provenance.collected_at", 1700000000, "metadata.provenance.collected_at"),
    ("provenance.dataset.vendor", ["Acme"], "metadata.provenance.dataset.vendor"),
    ("provenance.uploader.email", "not-an-email", "metadata.provenance.uploader.email"),
    ("provenance.uploader.ip_events.0.ip", "999.1.1.1", "metadata.provenance.uploader.ip_events[0].ip"),
    ("provenance.uploader.ip_events.0.event", "Teleport", "metadata.provenance.uploader.ip_events[0].event"),
    ("provenance.uploader.ip_events.0.port", 70000, "metadata.provenance.uploader.ip_events[0].port"),
    ("provenance.secret_sauce", True, "metadata.provenance.secret_sauce"),
    ("surprise", 1, "metadata.surprise"),
]


@pytest.mark.parametrize("path, value, field", BAD_METADATA, ids=[f"{p}={v!r}" for p, v, _ in BAD_METADATA])
def test_bad_metadata_is_a_400_naming_the_field(api, assert_nothing_stored, path, value, field):
    response = push(api, metadata=with_change(path, value))
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert field in errors, errors
    assert all(isinstance(m, str) and m for m in errors[field])
    assert_nothing_stored()


@pytest.mark.parametrize("raw, reason", [
    ("{not json", "Not valid JSON"),
    ("[1, 2]", "Must be a JSON object"),
    ("", "Not valid JSON"),
])
def test_malformed_metadata_json_is_a_400(api, assert_nothing_stored, raw, reason):
    response = push(api, raw_metadata=raw)
    assert response.status_code == 400
    assert reason in response.json()["errors"]["metadata"][0]
    assert_nothing_stored()


def test_missing_file_part_is_a_400(api, assert_nothing_stored):
    response = push(api, data=False)
    assert response.status_code == 400
    assert response.json() == {"errors": {"file": ["This part is required."]}}
    assert_nothing_stored()


def test_missing_metadata_part_is_a_400(api, assert_nothing_stored):
    response = push(api, metadata=False)
    assert response.status_code == 400
    assert response.json() == {"errors": {"metadata": ["This part is required."]}}
    assert_nothing_stored()


def test_json_body_instead_of_multipart_is_a_415(api, assert_nothing_stored):
    response = api.post("/api/v1/submissions", make_metadata(), format="json")
    assert response.status_code == 415
    assert "content_type" in response.json()["errors"]
    assert_nothing_stored()


def png_bytes(**kwargs):
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "teal").save(out, "PNG", **kwargs)
    return out.getvalue()


def bomb_png(width=40000, height=40000) -> bytes:
    """A valid PNG header announcing 1.6 gigapixels, followed by a small IDAT."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1) * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("data, content_type, status, reason", [
    (b"", "image/jpeg", 400, "empty"),
    (b"hello, I am text pretending to be a picture", "image/jpeg", 415, "not a supported image"),
    (b"<html><body>hi</body></html>", "application/octet-stream", 415, "not a supported image"),
    (synthetic_image(3)[:4000], "image/jpeg", 400, "truncated"),
    (png_bytes()[:-40], "image/png", 400, "truncated"),
    (png_bytes(), "image/jpeg", 415, "sent as image/jpeg but its bytes are image/png"),
    (synthetic_image(3), "text/html", 415, "sent as text/html"),
    (bomb_png(), "image/png", 413, "pixels"),
], ids=["empty", "text", "html", "truncated-jpeg", "truncated-png", "png-as-jpeg", "jpeg-as-html", "bomb"])
def test_bad_media_is_rejected_with_the_reason(api, assert_nothing_stored, data, content_type, status, reason):
    response = push(api, data, content_type=content_type)
    assert response.status_code == status, response.json()
    assert reason in response.json()["errors"]["file"][0]
    assert_nothing_stored()


def test_oversize_body_is_a_413(api, settings, assert_nothing_stored):
    settings.TSREVIEW_MAX_UPLOAD_BYTES = 50_000
    response = push(api, synthetic_image(5, size=(1200, 900), quality=95))
    assert response.status_code == 413
    assert "file" in response.json()["errors"]
    assert_nothing_stored()


def test_decompression_bomb_is_refused_on_its_header_without_using_much_memory(tmp_path):
    # In a fresh process, so the peak resident size measures this check alone.
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png())
    script = f"""
import django
django.setup()
from reports.intake.media import MediaRejected, image_inspect

def peak_kb():  # this process's own high-water mark (ru_maxrss would include the parent's)
    return int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")))

data = open({str(path)!r}, "rb").read()
before = peak_kb()
try:
    image_inspect(data, claimed_type="image/png")
    print("accepted")
except MediaRejected as exc:
    print(exc.status, peak_kb() - before)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "tsreview.settings"})
    status, grown_kb = result.stdout.split()
    assert status == "413"
    # Decoding 1.6 gigapixels would need 1.6 GB; refusing on the header costs almost nothing.
    assert int(grown_kb) < 20_000
