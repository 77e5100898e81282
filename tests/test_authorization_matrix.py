"""Every URL of the project against every kind of caller. A URL without a row here fails."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connections
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from reports.models import Hold, Role, Submission
from reports.review import queue
from reports.review import reveal as review
from tsreview.celery import app as celery_app

from .factories import TEST_MEDIA_KEY, make_confirmed, make_item, make_scanner, make_user

PERSONAS = ["anonymous", "holder", "other_reviewer", "lead", "admin", "scanner", "other_scanner"]
HUMANS = ["holder", "other_reviewer", "lead", "admin"]


def page(code=200, **override):
    """An HTML page for any signed-in person; everyone else is sent to the login page."""
    return {"anonymous": 302, "scanner": 302, "other_scanner": 302, **dict.fromkeys(HUMANS, code), **override}


def held(holder, lead, other=404):
    """An item's page or media: its claim holder and leads, nobody else (404 as if missing)."""
    return page(holder=holder, other_reviewer=other, lead=lead, admin=lead)


def lead_only(code):
    return page(holder=404, other_reviewer=404, lead=code, admin=code)


def api(owner, other=None):
    """The scanner API: bearer tokens only; a session is not a credential there."""
    return {**dict.fromkeys(["anonymous", *HUMANS], 401), "scanner": owner, "other_scanner": other or owner}


def public(code=200):
    return dict.fromkeys(PERSONAS, code)


# name: (method, path, data, expected status per persona)
MATRIX = {
    "home": ("get", "/", {}, page()),
    "healthz": ("get", "/healthz", {}, public(200)),  # load balancers: say only "ok" (tests/test_health.py)
    "readyz": ("get", "/readyz", {}, public(200)),
    "login": ("get", "/login/", {}, {**public(200), **dict.fromkeys(HUMANS, 302)}),
    "logout": ("post", "/logout/", {}, page(302)),
    "two-factor": ("get", "/account/2fa/", {}, page()),
    "claim-next": ("post", "/claim/", {}, page(302)),
    "settings": ("get", "/settings/", {}, page()),
    "view-task-claim": ("post", "/view-tasks/claim/", {}, page(302)),
    "view-task": ("get", "/view-tasks/999999/", {}, page(404)),  # only the task's holder (tests/test_view_tasks.py)
    "view-task-done": ("post", "/view-tasks/999999/done/", {}, page(404)),
    "break-taken": ("post", "/break/", {}, page(302)),
    "review": ("get", "/review/{item}/", {}, held(200, 200)),
    "review-decide": ("post", "/review/{item}/decide/", {}, held(400, 404)),
    "review-skip": ("post", "/review/{item}/skip/", {}, held(302, 404)),
    "review-heartbeat": ("post", "/review/{item}/heartbeat/", {}, page()),  # says only whether *you* hold it
    "media-preview": ("get", "/media/{item}/preview/thumb/", {}, held(200, 200)),
    "media-original": ("post", "/media/{item}/original/", {}, held(200, 200)),
    # The matrix's item is a picture, which has no segments; tests/test_video.py plays a video's.
    "media-segment": ("post", "/media/{item}/segment/", {}, held(404, 404)),
    "view-ended": ("post_json", "/views/{view}/", {"seconds": 1}, held(200, 404)),  # only the person who revealed
    "lead-decisions": ("get", "/lead/decisions/", {}, lead_only(200)),
    "lead-decisions-csv": ("get", "/lead/decisions.csv", {}, lead_only(200)),
    "lead-item": ("get", "/lead/items/{item}/", {}, lead_only(200)),
    "lead-item-overturn": ("post", "/lead/items/{confirmed}/overturn/", {}, lead_only(400)),
    "lead-cluster-split": ("post", "/lead/items/{item}/split/", {}, lead_only(400)),
    "lead-escalations": ("get", "/lead/escalations/", {}, lead_only(200)),
    "lead-escalation-claim": ("post", "/lead/escalations/claim/", {}, lead_only(302)),
    "lead-stats": ("get", "/lead/stats/", {}, lead_only(200)),
    "lead-audit": ("get", "/lead/audit/", {}, lead_only(200)),
    "lead-calibration": ("get", "/lead/calibration/", {}, lead_only(200)),
    "lead-calibration-export": ("get", "/lead/calibration.csv", {}, lead_only(200)),
    "lead-quarantine": ("get", "/lead/quarantine/", {}, lead_only(200)),
    "lead-quarantine-lift": ("post", "/lead/quarantine/999/lift/", {}, lead_only(404)),
    "lead-lists": ("get", "/lead/lists/", {}, lead_only(200)),
    "lead-list-export": ("get", "/lead/lists/export/", {"list": "nope"}, lead_only(400)),
    "lead-notices": ("get", "/lead/notices/", {}, lead_only(200)),
    "lead-notice-send": ("post", "/lead/notices/999/send/", {}, lead_only(404)),
    "lead-notice-acknowledge": ("post", "/lead/notices/999/acknowledge/", {}, lead_only(404)),
    "lead-webhooks": ("get", "/lead/webhooks/", {}, lead_only(200)),
    "lead-webhooks-replay": ("post", "/lead/webhooks/replay/", {}, lead_only(400)),
    "report-list": ("get", "/reports/", {}, lead_only(200)),
    "report-build": ("post", "/reports/build/", {}, lead_only(302)),
    "report-detail": ("get", "/reports/{report}/", {}, lead_only(200)),
    "report-edit": ("post", "/reports/{report}/edit/", {}, lead_only(400)),
    "report-approve": ("post", "/reports/{report}/approve/", {}, lead_only(302)),
    "report-retry": ("post", "/reports/{report}/retry/", {}, lead_only(302)),
    "report-abandon": ("post", "/reports/{report}/abandon/", {}, lead_only(302)),
    "report-reopen": ("post", "/reports/{report}/reopen/", {}, lead_only(302)),
    "report-xml": ("get", "/reports/{report}/xml/", {}, lead_only(200)),
    "report-view-task": ("post", "/reports/{report}/view-task/", {}, lead_only(302)),
    "report-file-move": ("post", "/reports/files/{file}/move/", {}, lead_only(302)),
    "report-attest": ("post", "/reports/files/{file}/attest/", {}, lead_only(302)),
    "hold-extend": ("post", "/reports/holds/{hold}/extend/", {}, lead_only(302)),
    "material-destroy": ("post", "/reports/items/{confirmed}/destroy/", {}, lead_only(302)),
    "submission-create": ("post", "/api/v1/submissions", {}, api(400)),
    "submission-detail": ("get", "/api/v1/submissions/{submission}", {}, api(200, 404)),
    "event-list": ("get", "/api/v1/events", {}, api(200)),
    "submission-provenance": ("patch_json", "/api/v1/submissions/{submission}/provenance", {"platform": "Example"}, api(200, 404)),
    "api-schema": ("get", "/api/v1/schema", {}, public()),
    "api-docs": ("get", "/api/v1/docs", {}, public()),
    # Signed in without the admin role: a clear 403 (it looped back to sign-in before).
    "admin-login": ("get", "/admin/login/", {}, {**page(403), "admin": 302}),
    "metrics": ("get", "/metrics", {}, public(404)),  # no token or address configured: nobody (tests/test_metrics.py)
    # The whole Django admin, by its index: staff only (others go to the one login page).
    "admin:*": ("get", "/admin/", {}, {**page(302), "admin": 200}),
}


def url_names(patterns=None, namespace=""):
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                yield "admin:*"
            else:
                yield from url_names(entry.url_patterns, namespace)
        elif isinstance(entry, URLPattern):
            yield entry.name or f"<unnamed {entry.pattern}>"


def test_every_url_of_the_project_has_a_row_in_the_matrix():
    names = set(url_names())
    assert names - set(MATRIX) == set(), "new URLs need a row in MATRIX"
    assert set(MATRIX) - names == set(), "MATRIX rows for URLs that no longer exist"


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory):
    """Made once for the module and committed; each test's own changes roll back."""
    root = tmp_path_factory.mktemp("matrix-media")
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    with override_settings(TSREVIEW_MEDIA_ROOT=root, TSREVIEW_MEDIA_KEY=TEST_MEDIA_KEY), django_db_blocker.unblock():
        people, tokens, ids = _world()
    yield root, people, tokens, ids
    celery_app.conf.task_always_eager = eager
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)
        # The connection this module opened outside any test: closed, so that dropping the test
        # database at the end of the run finds no other session on it.
        connections.close_all()


@pytest.fixture
def media_root(settings, world):
    """This module's tests share the world's media folder (overrides conftest's)."""
    settings.TSREVIEW_MEDIA_ROOT, settings.TSREVIEW_MEDIA_KEY = world[0], TEST_MEDIA_KEY
    return world[0]


def _world():
    """An item held by one reviewer (revealed once), a confirmed item in a draft report with a
    hold, and a submission of the first scanner."""
    from reports.reporting.drafting import report_draft_build

    people = {"holder": make_user("holly", Role.REVIEWER), "other_reviewer": make_user("otto", Role.REVIEWER),
              "lead": make_user("lena", Role.LEAD)}
    people["admin"] = get_user_model().objects.create_superuser("ada", "ada@example.org", "an admin passphrase")
    tokens = {"scanner": make_scanner("owner-scanner"), "other_scanner": make_scanner("other-scanner")}
    confirmed = make_confirmed(50, make_user("cora", Role.REVIEWER))
    report = report_draft_build(actor=people["lead"])[0]
    hold = Hold.objects.create(item=confirmed, until=timezone.now() + timedelta(days=30), reason="test hold")
    item = make_item(1, priority=99)
    claim = queue.item_claim(user=people["holder"])
    assert claim.item == item
    _, _, view = review.original_fetch(user=people["holder"], item=item, claim=claim, mode="hold")
    from rest_framework.test import APIClient

    owner = APIClient()
    owner.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['scanner']}")
    from .factories import push

    submission = push(owner, seed=77).json()["id"]
    assert Submission.objects.filter(pk=submission).exists()
    ids = {"item": item.pk, "view": view.pk, "submission": submission, "confirmed": confirmed.pk,
           "report": report.pk, "file": report.files.first().pk, "hold": hold.pk}
    return people, tokens, ids


def client_for(persona, people, tokens):
    if persona in ("scanner", "other_scanner"):
        from rest_framework.test import APIClient

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens[persona]}")
        return client
    client = Client()
    if persona != "anonymous":
        client.force_login(people[persona])
    return client


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("name", sorted(MATRIX))
def test_each_url_answers_each_caller_as_the_matrix_says(world, db, name, persona):
    _, people, tokens, ids = world
    method, path, data, expected = MATRIX[name]
    client = client_for(persona, people, tokens)
    url = path.format(**ids)
    if method.endswith("_json"):
        response = getattr(client, method.removesuffix("_json"))(url, json.dumps(data), content_type="application/json")
    else:
        response = getattr(client, method)(url, data)
    assert response.status_code == expected[persona], f"{method.upper()} {url} as {persona}"
