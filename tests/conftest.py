"""Personas and fixtures. The suite runs on real PostgreSQL and Redis, never on SQLite."""

import copy
import os
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connections, transaction
from django.db.backends.base.operations import BaseDatabaseOperations
from django.test import Client
from rest_framework.test import APIClient

from reports.models import AuditEvent, Item, Match, Role, Submission
from tsreview.celery import app as celery_app

from .factories import TEST_AUDIT_KEY, TEST_MEDIA_KEY, make_confirmed, make_item, make_scanner, make_user, stored_files


def pytest_configure(config):
    engine = settings.DATABASES["default"]["ENGINE"]
    if engine != "django.db.backends.postgresql":
        raise pytest.UsageError(
            "The suite runs on PostgreSQL: set DATABASE_URL=postgres://... (make test does). "
            f"Refusing to run on {engine}.")
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        raise pytest.UsageError("The suite needs Redis: set CELERY_BROKER_URL=redis://... (make test does).")
    _two_roles()
    xsd = Path(settings.TSREVIEW_CYBERTIP_XSD)
    xsd = xsd if xsd.is_absolute() else settings.BASE_DIR / xsd
    if not xsd.is_file():
        raise pytest.UsageError(
            f"The suite validates reports against NCMEC's schema, expected at {xsd} "
            "(make test looks in ../shared/ncmec/; set TSREVIEW_CYBERTIP_XSD to its path).")


# --- Two database roles (docs/security.md) ----------------------------------------------------
# The test database is created and migrated by the owner (DATABASE_OWNER_URL, or DATABASE_URL's
# role when only that is given), and the suite's own connections (the tests, the live server,
# the processes the fault tests start) run as a runtime role granted by reports.dbroles, exactly
# as in production. Without DATABASE_OWNER_URL the suite makes its runtime role itself.
TEST_RUNTIME_ROLE = "tsreview_test_runtime"
TEST_RUNTIME_PASSWORD = "tsreview-test-runtime"  # a role of the test cluster, on loopback
_RUNTIME = {}


def _two_roles():
    databases = settings.DATABASES
    default = databases["default"]
    if "owner" in databases:
        _RUNTIME.update(USER=default["USER"], PASSWORD=default["PASSWORD"], create=False)
        default["USER"], default["PASSWORD"] = databases["owner"]["USER"], databases["owner"]["PASSWORD"]
    else:
        _RUNTIME.update(USER=TEST_RUNTIME_ROLE, PASSWORD=TEST_RUNTIME_PASSWORD, create=True)
        databases["owner"] = copy.deepcopy(default)
    connections.__dict__.pop("settings", None)  # read DATABASES again


def _runtime_role_make(cursor):
    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [_RUNTIME["USER"]])
    if cursor.fetchone() is None:
        try:
            with transaction.atomic(using="owner"):
                cursor.execute(f"CREATE ROLE {_RUNTIME['USER']} LOGIN PASSWORD %s", [_RUNTIME["PASSWORD"]])
        except Exception:  # another suite on this cluster made it a moment ago
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [_RUNTIME["USER"]])
            assert cursor.fetchone(), "could not make the runtime role"


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """After pytest-django made the test database (as the owner): grant the runtime role, and
    let every connection of the alias "default" sign in as it."""
    from reports.dbroles import grant_runtime

    default, owner = connections["default"], connections["owner"]
    owner.close()
    owner.settings_dict["NAME"] = default.settings_dict["NAME"]
    with django_db_blocker.unblock():
        with owner.cursor() as cursor:
            if _RUNTIME["create"]:
                _runtime_role_make(cursor)
        grant_runtime(runtime_role=_RUNTIME["USER"])
        default.close()
        signed_in_as = default.settings_dict["USER"]
        default.settings_dict["USER"], default.settings_dict["PASSWORD"] = _RUNTIME["USER"], _RUNTIME["PASSWORD"]
        with default.cursor() as cursor:
            cursor.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
            assert cursor.fetchone() == (_RUNTIME["USER"], False), "the suite must run as a runtime role"
    yield
    if _OWNER.get("conn") is not None:
        _OWNER["conn"].close()
    with django_db_blocker.unblock():
        default.close()
        owner.close()
    default.settings_dict["USER"] = signed_in_as  # the owner drops the test database
    default.settings_dict["PASSWORD"] = owner.settings_dict["PASSWORD"]


_OWNER = {}


def owner_session():
    """The owner's own connection to the test database, apart from Django's (which a test may
    not be allowed to use): for the flush and the audit numbering below."""
    import psycopg

    if _OWNER.get("conn") is None or _OWNER["conn"].closed:
        db = connections["owner"].settings_dict
        _OWNER["conn"] = psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, dbname=db["NAME"],
                                         user=db["USER"], password=db["PASSWORD"] or None, autocommit=True)
    return _OWNER["conn"]


_flush = BaseDatabaseOperations.execute_sql_flush


def _flush_as_owner(self, sql_list):
    """A transactional test's flush empties every table, append-only ones too: only the owner may,
    with the append-only triggers set aside (as a superuser, by replication mode; otherwise by
    disabling them within the flush's own transaction)."""
    if self.connection.alias == "owner":
        return None  # the same database as "default", flushed once through it
    if self.connection.alias != "default" or not sql_list:
        return _flush(self, sql_list)
    from reports.dbroles import APPEND_ONLY_SQL

    conn = owner_session()
    with conn.transaction(), conn.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if cursor.fetchone()[0]:
            cursor.execute("SET LOCAL session_replication_role = replica")
            tables = []
        else:
            tables = [row[0] for row in cursor.execute(APPEND_ONLY_SQL).fetchall()]
            for table in tables:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        for sql in sql_list:
            cursor.execute(sql)
        for table in tables:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


BaseDatabaseOperations.execute_sql_flush = _flush_as_owner


@pytest.fixture(autouse=True)
def audit_numbering(request):
    """Sequences do not roll back with a test's transaction: each test's audit events start at
    the number after the committed ones (as each test's tables start empty), or the chainer
    would seal every number earlier tests used as a gap."""
    if "_django_db_helper" not in request.fixturenames and not request.node.get_closest_marker("django_db"):
        return
    request.getfixturevalue("django_db_setup")
    with owner_session().cursor() as cursor:
        cursor.execute("SELECT setval(pg_get_serial_sequence('reports_auditevent', 'id'), "
                       "coalesce((SELECT max(id) FROM reports_auditevent), 0) + 1, false)")


@pytest.fixture(autouse=True)
def audit_anchor(settings, tmp_path):
    """Each test has its own audit key and checkpoint file; gaps are sealed without waiting."""
    settings.TSREVIEW_AUDIT_KEY = TEST_AUDIT_KEY
    settings.TSREVIEW_AUDIT_OLD_KEYS = ""
    settings.TSREVIEW_AUDIT_CHECKPOINTS = str(tmp_path / "audit-checkpoints.jsonl")
    settings.TSREVIEW_AUDIT_GAP_GRACE_SECONDS = 0
    return Path(settings.TSREVIEW_AUDIT_CHECKPOINTS)


@pytest.fixture(autouse=True)
def fresh_cache():
    """Counters kept in the cache (sign-in attempts, the scanner rate limit) start at zero."""
    from django.core.cache import cache

    cache.clear()


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
