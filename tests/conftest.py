"""Personas and fixtures. The suite runs on real PostgreSQL and Redis, never on SQLite."""

import base64
import io
import json
import os
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from rest_framework.test import APIClient

from reports.demo import synthetic_image
from reports.models import AuditEvent, Item, Match, Role, Submission
from tsreview.celery import app as celery_app

TEST_MEDIA_KEY = base64.urlsafe_b64encode(b"k" * 32).decode()
PASSWORD = "correct horse battery staple"


def pytest_configure(config):
    engine = settings.DATABASES["default"]["ENGINE"]
    if engine != "django.db.backends.postgresql":
        raise pytest.UsageError(
            "The suite runs on PostgreSQL: set DATABASE_URL=postgres://... (make test does). "
            f"Refusing to run on {engine}.")
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        raise pytest.UsageError("The suite needs Redis: set CELERY_BROKER_URL=redis://... (make test does).")
    xsd = Path(settings.TSREVIEW_CYBERTIP_XSD)
    xsd = xsd if xsd.is_absolute() else settings.BASE_DIR / xsd
    if not xsd.is_file():
        raise pytest.UsageError(
            f"The suite validates reports against NCMEC's schema, expected at {xsd} "
            "(make test looks in ../shared/ncmec/; set TSREVIEW_CYBERTIP_XSD to its path).")


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Each test stores media in its own folder with a known key; tasks run in-process."""
    settings.TSREVIEW_MEDIA_ROOT = tmp_path / "media"
    settings.TSREVIEW_MEDIA_KEY = TEST_MEDIA_KEY
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield settings.TSREVIEW_MEDIA_ROOT
    celery_app.conf.task_always_eager = eager


def stored_files(root: Path) -> list[Path]:
    return [p for p in Path(root).rglob("*") if p.is_file()] if Path(root).exists() else []


@pytest.fixture
def assert_nothing_stored(media_root):
    def check():
        assert Item.objects.count() == 0
        assert Submission.objects.count() == 0
        assert Match.objects.count() == 0
        assert AuditEvent.objects.filter(action__startswith="submission").count() == 0
        assert stored_files(media_root) == []
    return check


@pytest.fixture
def broker():
    """The suite's Redis database, emptied; tasks go to it instead of running in-process."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()
    celery_app.conf.task_always_eager = False
    yield client
    client.flushdb()


# --- Scanners --------------------------------------------------------------------------------

def make_scanner(name: str) -> str:
    out = io.StringIO()
    call_command("create_scanner", name, stdout=out)
    return out.getvalue().strip()


@pytest.fixture
def scanner_token(db):
    return make_scanner("crawler")


@pytest.fixture
def other_scanner_token(db):
    return make_scanner("other-scanner")


@pytest.fixture
def api(scanner_token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {scanner_token}")
    return client


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


# --- People ----------------------------------------------------------------------------------

def make_user(username: str, role: str):
    user = get_user_model().objects.create_user(username, f"{username}@example.org", PASSWORD)
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.fixture
def reviewer(db):
    return make_user("rita", Role.REVIEWER)


@pytest.fixture
def second_reviewer(db):
    return make_user("sam", Role.REVIEWER)


@pytest.fixture
def lead(db):
    return make_user("lena", Role.LEAD)


# --- Browser ---------------------------------------------------------------------------------

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make between
# browser steps are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    path = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not Path(path).exists():
        pytest.fail(f"Browser tests need Chromium at {path} (make test installs it)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# --- Items in the queue ------------------------------------------------------------------------

def make_item(seed: int, *, priority=0, metadata=None, size=(320, 240)):
    """A synthetic item pushed through intake and queued, as a scanner would."""
    from reports.intake import item_previews_make, submission_create
    from reports.media import image_inspect
    from reports.models import Scanner
    from reports.provenance import MetadataInput

    scanner = Scanner.objects.filter(name="fixture-scanner").first()
    if scanner is None:
        make_scanner("fixture-scanner")
        scanner = Scanner.objects.get(name="fixture-scanner")
    data = synthetic_image(seed, size=size)
    validator = MetadataInput(data=metadata or make_metadata(f"fixture/{seed}"))
    validator.is_valid(raise_exception=True)
    result = submission_create(scanner=scanner, metadata=validator.validated_data, data=data,
                               facts=image_inspect(data, claimed_type="image/jpeg"))
    item = item_previews_make(item_id=result.submission.item_id)
    if priority:
        Item.objects.filter(pk=item.pk).update(priority=priority)
        item.refresh_from_db()
    return item


@pytest.fixture
def queued_items(db):
    return [make_item(seed) for seed in range(3)]


# --- Reports -----------------------------------------------------------------------------------

def make_confirmed(seed: int, reviewer, *, metadata=None, reveal=True, classification="A1", annotations=()):
    """An item confirmed through the real path: claimed, revealed (or not), decided."""
    from django.test import override_settings

    from reports import decisions, queue, review

    item = make_item(seed, metadata=metadata, priority=1000 + seed)
    with override_settings(TSREVIEW_QA_SAMPLE_PERCENT=0, TSREVIEW_REQUIRE_VIEW_TO_CONFIRM=reveal):
        claim = queue.item_claim(user=reviewer)
        assert claim.item_id == item.pk
        if reveal:
            review.original_fetch(user=reviewer, item=item, claim=claim, mode="hold")
        decisions.decision_record(user=reviewer, claim=claim, verdict="confirmed", classification=classification,
                                  annotations=annotations)
    item.refresh_from_db()
    return item


@pytest.fixture
def reporter_settings(settings):
    settings.TSREVIEW_REPORTER_FIRST_NAME, settings.TSREVIEW_REPORTER_LAST_NAME = "Rae", "Porter"
    settings.TSREVIEW_REPORTER_EMAIL = "reports@example.org"
    settings.TSREVIEW_COMPANY_NAME = "Example Photos"
    settings.TSREVIEW_NCMEC_MOU_SIGNED = False
    settings.TSREVIEW_CYBERTIP_XSD = os.environ.get("TSREVIEW_CYBERTIP_XSD", "../shared/ncmec/cyber_tipline.xsd")
    return settings


@pytest.fixture
def cybertip(reporter_settings):
    """The fake CyberTipline on a free loopback port, and the settings that point at it."""
    from .fake_cybertip import FakeCyberTipline

    fake = FakeCyberTipline(slow_seconds=1.5)
    reporter_settings.TSREVIEW_CYBERTIP_BASE_URL = fake.start()
    reporter_settings.TSREVIEW_CYBERTIP_USERNAME, reporter_settings.TSREVIEW_CYBERTIP_PASSWORD = fake.username, fake.password
    reporter_settings.TSREVIEW_CYBERTIP_TIMEOUT = 0.5
    reporter_settings.TSREVIEW_CYBERTIP_MAX_RETRIES = 3
    yield fake
    fake.stop()
