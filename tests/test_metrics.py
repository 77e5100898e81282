"""The Prometheus endpoint: what it counts, and who may read it."""

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from reports.models import AuditEvent, ReviewQueue
from reports.tasks import task_failed

from .factories import look, make_confirmed, make_item, make_variant

pytestmark = pytest.mark.django_db
TOKEN = "s3cret-metrics-token-for-tests"


@pytest.fixture
def scraper(settings):
    settings.TSREVIEW_METRICS_TOKEN = TOKEN
    return Client(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")


def samples(response) -> dict:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.content.decode()) for s in family.samples}


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Bearer ", f"Basic {TOKEN}", f"bearer {TOKEN}x"])
def test_without_the_token_metrics_are_not_there(settings, header):
    settings.TSREVIEW_METRICS_TOKEN = TOKEN
    client = Client(**({"HTTP_AUTHORIZATION": header} if header else {}))
    response = client.get("/metrics")
    assert response.status_code == 404
    assert b"tsreview_" not in response.content


def test_nobody_reads_metrics_when_nothing_is_configured(client, settings):
    settings.TSREVIEW_METRICS_TOKEN = ""
    settings.TSREVIEW_METRICS_ALLOWED_IPS = []
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_a_configured_address_reads_metrics_and_a_forwarded_header_does_not_count(settings):
    settings.TSREVIEW_METRICS_ALLOWED_IPS = ["10.1.0.0/16"]
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="10.2.0.1").get("/metrics").status_code == 404
    assert Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="10.1.2.3").get("/metrics").status_code == 404


def test_metrics_count_queues_decisions_reveals_reports_and_failures(scraper, reviewer, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    live = ReviewQueue.objects.create(name="live uploads", source_types=["user_upload"])
    make_confirmed(1, reviewer)  # one claim, one reveal, one confirmation
    make_item(7)
    make_variant(7, "reencode", amount=40)  # waits in 7's cluster
    task_failed(sender=type("T", (), {"name": "reports.tasks.report_send_task"})(), exception=OSError("down"))
    got = samples(scraper.get("/metrics"))
    assert got[("tsreview_queue_items", (("queue", "general"), ("state", "queued"), ("tier", "normal")))] == 1
    assert got[("tsreview_queue_items", (("queue", "general"), ("state", "clustered"), ("tier", "normal")))] == 1
    assert got[("tsreview_queue_oldest_age_seconds", (("queue", "general"), ("tier", "normal")))] >= 0
    assert got[("tsreview_claims_total", (("stage", "review"),))] == 1
    assert got[("tsreview_decisions_total", (("verdict", "confirmed"),))] == 1
    assert got[("tsreview_decisions_total", (("verdict", "not_csam"),))] == 0
    assert got[("tsreview_reveals_total", ())] == 1
    assert got[("tsreview_unblurred_seconds_total", ())] == 1.0
    assert got[("tsreview_reports", (("state", "draft"),))] == 0
    assert got[("tsreview_celery_task_failures_total", (("task", "reports.tasks.report_send_task"),))] == 1
    assert AuditEvent.objects.get(action="task.failed").data == {"task": "reports.tasks.report_send_task", "error": "OSError"}
    # Totals only: no reviewer appears anywhere.
    assert "rita" not in scraper.get("/metrics").content.decode()
    assert live.name not in {k[1][0][1] for k in got if k[0] == "tsreview_queue_items"}  # an empty queue has no rows
    look(reviewer, make_item(2), None)  # a lead-style look without a claim still counts
    assert samples(scraper.get("/metrics"))[("tsreview_reveals_total", ())] == 2
