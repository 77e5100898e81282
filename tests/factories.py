"""Objects for tests, made through the product's own paths (intake, claim, reveal, decide).

Only synthetic media: pictures drawn by devtools.synthetic."""

import functools
import io
import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import override_settings

from devtools.synthetic import synthetic_image, synthetic_variant
from reports.intake.previews import item_previews_make
from reports.intake.routing import rank_time
from reports.intake.submission import submission_push
from reports.models import Claim, Decision, Item, Scanner
from reports.review.decisions import decision_record
from reports.review.queue import item_claim
from reports.review.reveal import original_fetch, view_seconds_record

TEST_MEDIA_KEY = "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s="
TEST_AUDIT_KEY = "test1:dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0dGVzdHRlc3Q="
PASSWORD = "correct horse battery staple"


def stored_files(root) -> list[Path]:
    if hasattr(root, "keys"):  # a bucket (tests/support/s3.py)
        return root.rglob("*")
    return [p for p in Path(root).rglob("*") if p.is_file()] if Path(root).exists() else []



# --- Scanners and pushes ----------------------------------------------------------------------

def make_scanner(name: str) -> str:
    out = io.StringIO()
    call_command("create_scanner", name, stdout=out)
    return out.getvalue().strip()


def make_metadata(external_id="crawl-2026-11/obj-81723", **overrides) -> dict:
    """The example document of DESIGN §3."""
    metadata = {
        "external_id": external_id,
        "observed_at": "2026-11-20T12:00:00Z",
        "matches": [{"hash_type": "pdq", "hash_value": "f8" * 32, "list": "NCMEC", "list_entry_id": "98213",
                     "distance": 12, "threshold": 31, "label": "A1"}],
        "provenance": {
            "source_type": "third_party_dataset",
            "platform": "Example Photos",
            "dataset": {"name": "web-images-v3", "vendor": "Acme Data", "version": "2026-09",
                        "record_id": "shard-0042/1881", "acquired_at": "2026-10-01T00:00:00Z"},
            "location_url": "https://host.example/img/1881.jpg",
            "page_url": "https://host.example/gallery/7",
            "collected_at": "2026-09-14T03:12:00Z",
            "publicly_available": True,
            "original_filename": "1881.jpg",
            "uploaded_at": None,
            "uploader": {"esp_identifier": None, "screen_name": None, "email": None, "profile_url": None,
                         "ip_events": [{"ip": "203.0.113.7", "event": "Upload", "at": "2026-09-01T10:00:00Z", "port": 443}],
                         "device_ids": []},
        },
    }
    metadata.update(overrides)
    return metadata


def upload(data: bytes, content_type="image/jpeg", name="upload.jpg"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type=content_type)


def push(client, data=None, metadata=None, *, content_type="image/jpeg", raw_metadata=None, seed=1):
    body = {}
    if data is not False:
        body["file"] = upload(synthetic_image(seed) if data is None else data, content_type)
    if raw_metadata is not None:
        body["metadata"] = raw_metadata
    elif metadata is not False:
        body["metadata"] = json.dumps(make_metadata() if metadata is None else metadata)
    return client.post("/api/v1/submissions", body, format="multipart")


def look(user, item, claim=None, *, seconds=1.0, painted=True):
    """A reveal as the review page makes it: the original is fetched, then the page reports
    how long it was painted on screen. Returns the ViewEvent."""
    _, _, view = original_fetch(user=user, item=item, claim=claim, mode="hold")
    return view_seconds_record(view=view, seconds=seconds, painted=painted)


def look_via(client, item_id, *, seconds=1.0, painted=True):
    """The same look through the pages: POST the reveal, then the page's report of it."""
    response = client.post(f"/media/{item_id}/original/", {"mode": "hold"})
    assert response.status_code == 200, response.status_code
    client.post(f"/views/{response['X-View-Id']}/", json.dumps({"seconds": seconds, "painted": painted}),
                content_type="application/json")
    return response


# --- People and decisions ---------------------------------------------------------------------

@functools.cache
def password_hash() -> str:
    """PASSWORD hashed once, with the settings' own hasher, for every test user: its million
    rounds took half a second a user, a large part of the suite's time."""
    return make_password(PASSWORD)


def make_user(username: str, role: str):
    user = get_user_model().objects.create(username=username, email=f"{username}@example.org", password=password_hash())
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def make_item(seed: int, *, priority=0, metadata=None, size=(320, 240)):
    """A synthetic item pushed through intake and queued, as a scanner would."""
    scanner = Scanner.objects.filter(name="fixture-scanner").first()
    if scanner is None:
        make_scanner("fixture-scanner")
        scanner = Scanner.objects.get(name="fixture-scanner")
    result = submission_push(scanner=scanner, document=metadata or make_metadata(f"fixture/{seed}"),
                             data=synthetic_image(seed, size=size), claimed_type="image/jpeg")
    item = item_previews_make(item_id=result.submission.item_id)
    if priority:  # a test's own order: the priority, and the claim rank that follows from it
        Item.objects.filter(pk=item.pk).update(priority=priority, rank_at=rank_time(item.queued_at, priority, item.urgent))
        item.refresh_from_db()
    return item


def make_variant(seed: int, kind: str, *, amount: float = 0.0, n: int = 0, metadata=None, size=(320, 240)):
    """A near-copy (re-encode, resize, crop, brightness) of make_item(seed)'s picture, pushed
    through intake with its previews made: it joins the original's cluster when near enough."""
    scanner = Scanner.objects.filter(name="fixture-scanner").first()
    if scanner is None:
        make_scanner("fixture-scanner")
        scanner = Scanner.objects.get(name="fixture-scanner")
    data = synthetic_variant(synthetic_image(seed, size=size), kind, amount=amount)
    result = submission_push(scanner=scanner, document=metadata or make_metadata(f"fixture/{seed}/{kind}/{amount}/{n}"),
                             data=data, claimed_type="image/jpeg")
    return item_previews_make(item_id=result.submission.item_id)


def make_confirmed(seed: int, reviewer, *, metadata=None, reveal=True, classification="A1", annotations=()):
    """An item confirmed through the real path: claimed, revealed (or not), decided."""
    item = make_item(seed, metadata=metadata, priority=1000 + seed)
    with override_settings(TSREVIEW_QA_SAMPLE_PERCENT=0, TSREVIEW_REQUIRE_VIEW_TO_CONFIRM=reveal):
        claim = item_claim(user=reviewer)
        assert claim.item_id == item.pk
        if reveal:
            look(reviewer, item, claim)
        decision_record(user=reviewer, claim=claim, verdict="confirmed", classification=classification,
                                  annotations=annotations)
    item.refresh_from_db()
    return item


def decide_next(user, verdict="confirmed", *, stages=(Claim.Stage.QA, Claim.Stage.REVIEW), reveal=True, **fields) -> Decision:
    """One person claims the next item, looks at it, and decides: the real path."""
    claim = item_claim(user=user, stages=stages)
    assert claim is not None
    if reveal:
        look(user, claim.item, claim)
    defaults = {"confirmed": {"classification": "A1"}, "not_csam": {"reason": "benign"}, "escalated": {"note": "unsure"}}
    return decision_record(user=user, claim=claim, verdict=verdict, **{**defaults[verdict], **fields})
