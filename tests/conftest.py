"""Personas and fixtures. The suite runs on real PostgreSQL and Redis, never on SQLite."""

import os
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient

from reports.models import AuditEvent, Item, Match, Role, Submission
from tsreview.celery import app as celery_app

from .factories import TEST_MEDIA_KEY, make_confirmed, make_item, make_scanner, make_user, stored_files


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


# The media test set runs on both stores: the local folder and an S3 bucket on a real
# S3-protocol server (moto in server mode on loopback). Per module, the tests whose names hold
# one of these words (those that store, read, serve, send or remove media; None: all of them),
# and single tests marked both_stores (the video tests that stream through the store).
BOTH_STORES = {
    "test_intake_api": ["stored_encrypted", "previews_are_blurred", "replayed", "same_external_id", "same_bytes"],
    "test_review": ["preview", "original", "media_of_an_item", "lead_may_see", "confirmation_is_recorded"],
    "test_cybertip_submit": ["a_full_submission_finishes", "crash_after_submit"],
    "test_retention": ["purges", "never_touches_held", "keeps_confirmed", "destroys_held", "not_destroyed",
                       "destroyed_media"],
    "test_hostile_media": ["refused_with_a_4xx", "accepted_and_previewed", "polyglot", "rejected_push_after"],
    "test_key_rotation": None,
    "test_media_stores": None,
}


def pytest_generate_tests(metafunc):
    if "store_kind" not in metafunc.fixturenames or any(
            "store_kind" in str(mark.args[0]) for mark in metafunc.definition.iter_markers("parametrize")):
        return  # not a media test, or the test names its stores itself
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    words = BOTH_STORES.get(module, [])
    if (words is None or any(word in metafunc.function.__name__ for word in words)
            or metafunc.definition.get_closest_marker("both_stores")):
        metafunc.parametrize("store_kind", ["local", "s3"], indirect=True)


@pytest.fixture
def store_kind(request):
    return getattr(request, "param", "local")


@pytest.fixture(scope="session")
def s3_server():
    from .support.s3 import MotoS3

    server = MotoS3()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path, store_kind, request):
    """Each test stores media in its own folder (or bucket) with a known key; tasks run
    in-process. On S3 this is a path-like view of the test's own bucket."""
    settings.TSREVIEW_MEDIA_ROOT = tmp_path / "media"
    settings.TSREVIEW_MEDIA_KEY = TEST_MEDIA_KEY
    settings.TSREVIEW_MEDIA_STORAGE = "local"
    root = settings.TSREVIEW_MEDIA_ROOT
    if store_kind == "s3":
        from .support.s3 import S3Root

        s3 = request.getfixturevalue("s3_server")
        bucket = s3.new_bucket()
        for name, value in s3.settings(bucket).items():
            setattr(settings, name, value)
        root = S3Root(s3.client, bucket)
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield root
    celery_app.conf.task_always_eager = eager


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


# --- People ----------------------------------------------------------------------------------

@pytest.fixture
def reviewer(db):
    return make_user("rita", Role.REVIEWER)


@pytest.fixture
def second_reviewer(db):
    return make_user("sam", Role.REVIEWER)


@pytest.fixture
def lead(db):
    return make_user("lena", Role.LEAD)


@pytest.fixture
def rita(client, reviewer):
    """The test client signed in as the reviewer."""
    client.force_login(reviewer)
    return client


@pytest.fixture
def lena(lead):
    """A test client of its own signed in as the lead (so a test can use rita and lena both)."""
    client = Client()
    client.force_login(lead)
    return client


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


@pytest.fixture
def login(browser, live_server, transactional_db):
    """Browser contexts signed in as a user (a session made by Django's test client), closed
    before the test's database goes away. A script error on any page fails the test."""
    contexts, errors = [], []

    def open_as(user):
        client = Client()
        client.force_login(user)
        context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=live_server.url)
        context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    yield open_as
    for context in contexts:
        context.close()
    _live_server_settles()
    assert not errors, errors


def _live_server_settles(seconds=10.0):
    """Wait until the live server has answered every request still in flight (a reveal report
    sent with keepalive outlives its page): one still running when the test database is
    flushed deadlocks the flush."""
    import threading
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(
            "process_request_thread" in thread.name for thread in threading.enumerate()):
        time.sleep(0.05)


# --- Items in the queue ------------------------------------------------------------------------

@pytest.fixture
def queued_items(db):
    return [make_item(seed) for seed in range(3)]


# --- Reports -----------------------------------------------------------------------------------

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
    from devtools.fake_cybertip import FakeCyberTipline

    fake = FakeCyberTipline(slow_seconds=1.5)
    reporter_settings.TSREVIEW_CYBERTIP_BASE_URL = fake.start()
    reporter_settings.TSREVIEW_CYBERTIP_USERNAME, reporter_settings.TSREVIEW_CYBERTIP_PASSWORD = fake.username, fake.password
    reporter_settings.TSREVIEW_CYBERTIP_TIMEOUT = 0.5
    reporter_settings.TSREVIEW_CYBERTIP_MAX_RETRIES = 3
    yield fake
    fake.stop()


@pytest.fixture
def approved(reviewer, lead, cybertip, django_capture_on_commit_callbacks):
    """A report approved by the lead; its sending task is captured, not run."""
    from reports.reporting import drafting, lifecycle

    make_confirmed(1, reviewer, annotations=["generativeAi"])
    report = drafting.report_draft_build(actor=lead)[0]
    with django_capture_on_commit_callbacks(execute=False):
        lifecycle.report_approve(actor=lead, report=report)
    report.refresh_from_db()
    return report
