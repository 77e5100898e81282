"""Ingest is lean on the database: a push of new bytes takes at most 8 statements, a replay at
most 5 (counted with Django's CaptureQueriesContext around the API request). The transaction's
BEGIN and COMMIT are counted apart: a new push has one transaction (2 more round trips), a
replay none."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from devtools.synthetic import synthetic_image
from reports.models import AuditEvent, Item, Submission

from .factories import make_metadata, push

# Transactional, so that intake's transaction is a real one (as in production), not a savepoint
# inside the test's; COMMIT itself is not a captured query.
pytestmark = pytest.mark.django_db(transaction=True)


def counted(api, data, external_id):
    with CaptureQueriesContext(connection) as queries:
        response = push(api, data, make_metadata(external_id))
    sql = [q["sql"] for q in queries.captured_queries]
    transactions = [q for q in sql if q in ("BEGIN", "COMMIT")]
    return response, [q for q in sql if q not in ("BEGIN", "COMMIT")], transactions


def test_a_new_push_takes_at_most_eight_statements(api, broker):
    push(api, synthetic_image(1), make_metadata("warm-up"))  # the scanner's first push (audit head made)
    response, queries, transactions = counted(api, synthetic_image(2), "new/1")
    assert response.status_code == 201 and response.json()["status"] == "received"
    assert len(queries) <= 8, "\n".join(queries)
    assert transactions == ["BEGIN", "COMMIT"]
    assert broker.llen("celery") == 2  # the previews task of each push is queued, after the commit
    assert Item.objects.count() == 2 and Submission.objects.count() == 2
    assert AuditEvent.objects.filter(action="item.created").count() == 2


def test_a_replay_takes_at_most_five_statements(api):
    data = synthetic_image(3)
    first = push(api, data, make_metadata("replayed/1"))
    response, queries, transactions = counted(api, data, "replayed/1")
    assert response.status_code == 200 and response.json() == first.json() | {"status": "queued"}
    assert len(queries) <= 5, "\n".join(queries)
    assert transactions == []
    assert Submission.objects.count() == 1


def test_the_preview_task_of_a_new_picture_takes_at_most_eleven_statements(api, monkeypatch):
    """Read the item, look for near-duplicates, lock it, score and route it (sightings, their
    matches with whether each entry is quarantined, policy, queues), save it, index its PDQ
    (once: one statement that writes only if the item has no rows), audit, and tell its
    scanner: the sightings are read once for all of that."""
    from reports.intake import previews, submission
    from reports.models import PriorityPolicy, ScannerEvent

    PriorityPolicy.current()  # the policy's single row, made once per installation
    monkeypatch.setattr(submission, "enqueue", lambda *args: None)  # the task is run below, counted
    push(api, synthetic_image(4), make_metadata("previews/1"))
    item = Item.objects.get()
    assert item.state == Item.State.NEW
    with CaptureQueriesContext(connection) as queries:
        previews.item_previews_make(item_id=item.pk)
    sql = [q["sql"] for q in queries.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]
    item.refresh_from_db()
    assert item.state == Item.State.QUEUED and set(item.previews) >= {"thumb", "inspect-1"}
    assert len(sql) <= 11, "\n".join(sql)
    assert list(AuditEvent.objects.filter(item_id=item.pk).order_by("id").values_list("action", flat=True))[-2:] == [
        "item.previews_made", "item.queued"]
    assert list(ScannerEvent.objects.filter(submission__item=item).values_list("type", flat=True)) == [ScannerEvent.Type.QUEUED]
