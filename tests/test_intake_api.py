"""The scanner API (DESIGN §3): push, replay, duplicates, reading back, provenance later."""

import io
import json

import numpy as np
import pytest
from django.core.management import call_command
from PIL import Image

from devtools.synthetic import synthetic_image
from reports.api.auth import token_hash
from reports.audit import audit_verify
from reports.intake.storage import media_store
from reports.models import AuditEvent, Item, Match, Scanner, Submission

from .factories import make_metadata, push, stored_files

pytestmark = pytest.mark.django_db


def test_create_scanner_prints_a_token_once_and_stores_only_its_hash(db):
    out = io.StringIO()
    call_command("create_scanner", "dataset-scanner", stdout=out)
    token = out.getvalue().strip()
    scanner = Scanner.objects.get(name="dataset-scanner")
    assert token.startswith("tsr_") and len(token) > 40
    assert scanner.token_hash == token_hash(token)
    assert token not in json.dumps(list(Scanner.objects.values()), default=str)
    assert AuditEvent.objects.filter(action="scanner.created", subject_id=str(scanner.pk)).exists()


def test_pushed_jpeg_is_stored_encrypted_hashed_and_queued(api, media_root, django_capture_on_commit_callbacks):
    data = synthetic_image(7, size=(1024, 768))
    with django_capture_on_commit_callbacks(execute=True):
        response = push(api, data)
    assert response.status_code == 201, response.json()
    body = response.json()
    item = Item.objects.get()
    assert body["item"] == item.sha256 and body["duplicate"] is False
    assert body["external_id"] == "crawl-2026-11/obj-81723"
    assert body["provenance_missing"] == []
    assert body["matches"][0] == {"hash_type": "pdq", "hash_value": "f8" * 32, "list": "NCMEC", "list_entry_id": "98213",
                                  "distance": 12.0, "threshold": 31.0, "label": "A1"}
    assert (item.width, item.height, item.mime_type, item.size_bytes) == (1024, 768, "image/jpeg", len(data))
    assert len(item.md5) == 32 and len(item.sha1) == 40 and len(item.pdq) == 64
    # At rest the original is ciphertext; the store gives back the exact bytes.
    raw = (media_root / item.original_blob).read_bytes()
    assert data[:64] not in raw and b"JFIF" not in raw
    assert media_store().get(item.original_blob) == data
    # The previews were made on commit, and the item waits in the queue.
    item.refresh_from_db()
    assert item.state == Item.State.QUEUED
    thumb = Image.open(io.BytesIO(media_store().get_part(item.previews["thumb"], "thumb")))
    inspect = Image.open(io.BytesIO(media_store().get_part(item.previews["inspect-3"], "inspect-3")))
    assert thumb.mode == "L" and max(thumb.size) <= 256
    assert inspect.mode == "L" and inspect.height <= 600
    assert api.get(f"/api/v1/submissions/{body['id']}").json()["status"] == "queued"
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions[-4:] == ["item.created", "submission.created", "item.previews_made", "item.queued"]
    assert audit_verify()[1] is None


def test_previews_are_blurred_beyond_recognition(api, django_capture_on_commit_callbacks):
    # A sharp checkerboard: any surviving detail shows up as high local contrast.
    board = Image.new("L", (800, 600))
    board.putdata([255 * (((x // 10) + (y // 10)) % 2) for y in range(600) for x in range(800)])
    out = io.BytesIO()
    board.save(out, "PNG")
    with django_capture_on_commit_callbacks(execute=True):
        assert push(api, out.getvalue(), content_type="image/png").status_code == 201
    inspect = Image.open(io.BytesIO(media_store().get_part(Item.objects.get().previews["inspect-1"], "inspect-1")))
    pixels = list(inspect.tobytes())
    neighbours = [abs(pixels[i] - pixels[i + 1]) for i in range(len(pixels) - 1) if (i + 1) % inspect.width]
    assert max(neighbours) < 20


@pytest.mark.parametrize(("fmt", "size", "orientation", "thumb", "inspect"), [
    ("JPEG", (1024, 768), 1, (256, 192), (400, 300)),  # a JPEG decodes at an eighth of its size for this
    ("JPEG", (768, 1024), 1, (192, 256), (300, 400)),
    ("JPEG", (1024, 768), 6, (192, 256), (300, 400)),  # stored sideways: previewed upright
    ("JPEG", (1000, 999), 8, (256, 256), (400, 400)),  # near square, turned the other way
    ("PNG", (1024, 768), 6, (192, 256), (300, 400)),   # decoded whole, turned by its EXIF too
    ("PNG", (4000, 20), 1, (256, 1), (400, 2)),        # very wide
    ("JPEG", (60, 40), 1, (60, 40), (60, 40)),         # never larger than the picture
])
def test_previews_keep_their_sizes_and_show_the_picture_upright(fmt, size, orientation, thumb, inspect):
    """However small the decode they are made from, the previews have the sizes they always had,
    and show the picture the right way up (a bright top half, once turned upright)."""
    from reports.intake.media import previews_make

    upright = Image.new("L", size if orientation == 1 else size[::-1], 0)
    upright.paste(255, (0, 0, upright.width, upright.height // 2))
    turn = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}  # what the EXIF value undoes
    stored = upright.transpose(turn[orientation]) if orientation in turn else upright
    assert stored.size == size
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored.convert("RGB").save(out, fmt, exif=exif)
    previews = {kind: Image.open(io.BytesIO(data)) for kind, data in previews_make(out.getvalue()).items()}
    assert previews["thumb"].size == thumb
    assert {previews[f"inspect-{level}"].size for level in (1, 2, 3)} == {inspect}
    for kind, preview in previews.items():
        assert preview.mode == "L"
        if min(preview.size) >= 8:
            pixels = np.asarray(preview, dtype=float)
            quarter = pixels.shape[0] // 4
            assert pixels[:quarter].mean() - pixels[-quarter:].mean() > 100, kind


def test_replayed_submission_returns_the_same_id(api, media_root):
    first = push(api)
    files = stored_files(media_root)
    second = push(api)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"]
    assert Submission.objects.count() == 1 and Match.objects.count() == 1
    assert stored_files(media_root) == files


def test_same_external_id_with_other_bytes_is_a_conflict(api, media_root):
    push(api, seed=1)
    files = stored_files(media_root)
    response = push(api, seed=2)
    assert response.status_code == 409
    assert response.json() == {"errors": {"metadata.external_id": ["Already used by this scanner for different bytes."]}}
    assert Item.objects.count() == 1 and Submission.objects.count() == 1
    assert stored_files(media_root) == files


def test_same_bytes_from_another_submission_attach_to_the_existing_item(api, other_scanner_token, media_root):
    first = push(api, metadata=make_metadata("a"))
    second = push(api, metadata=make_metadata("b"))
    from rest_framework.test import APIClient

    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {other_scanner_token}")
    third = push(other, metadata=make_metadata("a"))
    assert [r.status_code for r in (first, second, third)] == [201, 201, 201]
    assert [r.json()["duplicate"] for r in (first, second, third)] == [False, True, False]  # the other scanner is not told
    assert len({r.json()["item"] for r in (first, second, third)}) == 1
    assert Item.objects.count() == 1 and Submission.objects.count() == 3
    item = Item.objects.get()
    assert len(stored_files(media_root)) == 1 + len(item.previews)  # the bytes stored once, with their previews


def test_scanner_reads_its_own_submission_but_not_another_scanners(api, other_scanner_token):
    submission_id = push(api).json()["id"]
    mine = api.get(f"/api/v1/submissions/{submission_id}")
    assert mine.status_code == 200
    assert mine.json()["id"] == submission_id and mine.json()["report"] is None
    from rest_framework.test import APIClient

    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {other_scanner_token}")
    assert other.get(f"/api/v1/submissions/{submission_id}").status_code == 404
    assert api.get("/api/v1/submissions/not-a-uuid").status_code == 404
    assert api.get("/api/v1/submissions/00000000-0000-0000-0000-000000000000").status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer ", "Bearer tsr_wrong", "Token abc", "Basic dXNlcjpwYXNz"])
def test_requests_without_a_valid_token_are_401_and_store_nothing(db, header, assert_nothing_stored):
    from rest_framework.test import APIClient

    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = push(client)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert list(response.json()["errors"]) == ["authorization"]
    assert_nothing_stored()


def test_revoked_scanner_token_is_refused(api, scanner_token):
    Scanner.objects.update(is_active=False)
    assert push(api).status_code == 401


def test_provenance_can_be_completed_later(api):
    metadata = make_metadata()
    del metadata["provenance"]["dataset"]
    created = push(api, metadata=metadata).json()
    assert created["provenance_missing"] == ["dataset.name", "dataset.vendor"]
    response = api.patch(f"/api/v1/submissions/{created['id']}/provenance",
                         {"dataset": {"name": "web-images-v3", "vendor": "Acme Data"}, "platform": None,
                          "uploader": {"ip_events": [{"ip": "198.51.100.4", "event": "Login", "at": "2026-09-02T10:00:00Z"}]}},
                         format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["provenance_missing"] == []
    assert body["provenance"]["platform"] == "Example Photos"  # null never erases
    assert [e["ip"] for e in body["provenance"]["uploader"]["ip_events"]] == ["203.0.113.7", "198.51.100.4"]
    event = AuditEvent.objects.get(action="submission.provenance_updated")
    assert "dataset" not in event.data["old"] and event.data["new"]["dataset"]["vendor"] == "Acme Data"


@pytest.mark.parametrize("body, field", [
    ({"dataset": {"name": 5}}, "dataset.name"),
    ({"colour": "blue"}, "colour"),
    ({"source_type": "telepathy"}, "source_type"),
    ({"location_url": "javascript:alert(1)"}, "location_url"),
    ({}, "body"),
])
def test_bad_provenance_updates_are_refused_and_change_nothing(api, body, field):
    created = push(api).json()
    response = api.patch(f"/api/v1/submissions/{created['id']}/provenance", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert Submission.objects.get().provenance == created["provenance"]
    assert not AuditEvent.objects.filter(action="submission.provenance_updated").exists()


def test_provenance_of_another_scanners_submission_is_404(api, other_scanner_token):
    from rest_framework.test import APIClient

    created = push(api).json()
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {other_scanner_token}")
    response = other.patch(f"/api/v1/submissions/{created['id']}/provenance", {"platform": "x"}, format="json")
    assert response.status_code == 404
    assert Submission.objects.get().provenance["platform"] == "Example Photos"


def test_openapi_schema_is_generated_from_the_code(db, client):
    response = client.get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    assert {"/api/v1/submissions", "/api/v1/submissions/{submission_id}",
            "/api/v1/submissions/{submission_id}/provenance"} <= set(schema["paths"])
    body = schema["paths"]["/api/v1/submissions"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body


def test_api_docs_page_loads_nothing_from_outside(db, client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    for attribute in ("src=", "href="):
        for chunk in html.split(attribute)[1:]:
            url = chunk.strip("\"'").split("\"")[0].split("'")[0]
            assert not url.startswith(("http:", "https:", "//")), url
