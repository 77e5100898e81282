"""A claim and a decision are lean on the database (docs/benchmarks.md §3): a first-review
claim from a reviewer's named queues takes at most 6 statements, a not-apparent-CSAM decision
at most 14. And blind QA's "has this reviewer decided this item?" is one index probe per
candidate on a young table, not a scan of everything the reviewer ever decided."""

import json

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reports.models import AuditEvent, Claim, Decision, ExposureDay, Item, ReviewQueue, ScannerEvent
from reports.review import queue
from reports.review.decisions import decision_record

from .factories import make_item

pytestmark = pytest.mark.django_db(transaction=True)


def statements(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries
            if q["sql"] not in ("BEGIN", "COMMIT") and "SAVEPOINT" not in q["sql"]]


def test_a_claim_from_named_queues_takes_at_most_six_statements(reviewer):
    lanes = [ReviewQueue.objects.create(name=name, position=i) for i, name in enumerate(["live uploads", "video"])]
    reviewer.review_queues.set(lanes)
    items = [make_item(i) for i in range(3)]
    Item.objects.filter(pk=items[1].pk).update(queue=lanes[1])
    queue.claim_skip(claim=queue.item_claim(user=reviewer))  # a skip on record: the statement leaves it out
    with CaptureQueriesContext(connection) as queries:
        claim = queue.item_claim(user=reviewer)
    assert claim is not None and claim.stage == Claim.Stage.REVIEW and claim.item_id != items[0].pk
    assert len(statements(queries)) <= 6, "\n".join(statements(queries))
    assert Item.objects.get(pk=claim.item_id).state == Item.State.CLAIMED
    assert AuditEvent.objects.filter(action="claim.started", subject_id=str(claim.pk)).count() == 1
    with CaptureQueriesContext(connection) as queries:
        assert queue.item_claim(user=reviewer) == claim  # the one they hold: one statement, and the claim
    assert len(statements(queries)) == 2


def test_a_decision_takes_at_most_fourteen_statements(reviewer, settings):
    """A not-apparent-CSAM verdict on an item with one sighting and one list entry: the claim
    (with whether this reviewer revealed the file), its views, the decision, the item, the
    scanner's event, the entry's false-match count, the decision read back for its audit
    digest, the claim's end, the audit (the decision's event and the claim's end in one
    INSERT), today's exposure."""
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    make_item(0)
    decision_record(user=reviewer, claim=queue.item_claim(user=reviewer), verdict="not_csam", reason="benign")
    item = make_item(1)  # the second of the day: the day's exposure row and the policies exist
    claim = queue.item_claim(user=reviewer)
    with CaptureQueriesContext(connection) as queries:
        decision = decision_record(user=reviewer, claim=claim, verdict="not_csam", reason="benign")
    assert len(statements(queries)) <= 14, "\n".join(statements(queries))
    item.refresh_from_db()
    assert (item.state, item.verdict, item.claimed_by_id, item.lease_until) == (Item.State.DECIDED, "not_csam", None, None)
    assert Claim.objects.get(pk=claim.pk).end == Claim.End.DECIDED
    assert Decision.objects.get(pk=decision.pk).viewed_unblurred is False
    assert ScannerEvent.objects.filter(submission__item=item, type=ScannerEvent.Type.NOT_CONFIRMED).count() == 1
    assert ExposureDay.objects.get(user=reviewer).items == 2
    actions = list(AuditEvent.objects.filter(item_id=item.pk).order_by("id").values_list("action", flat=True))
    assert actions[-2:] == ["decision.recorded", "claim.decided"]


@pytest.mark.parametrize("named_queues", [False, True], ids=["all", "named-queues"])
def test_blind_qa_probes_one_index_entry_per_candidate(reviewer, second_reviewer, settings, named_queues):
    """The test database's statistics are those of a young install (never analysed): the plan
    must still probe decision_reviewer_item by (reviewer, item), never scan the reviewer's
    decisions as a whole for each candidate; from a reviewer's named queues, in each queue's head."""
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 100
    datasets = ReviewQueue.objects.create(name="datasets", position=0) if named_queues else None
    if datasets:
        second_reviewer.review_queues.set([datasets])
    for i in range(4):
        Item.objects.filter(pk=make_item(i).pk).update(queue=datasets)
        claim = queue.item_claim(user=reviewer)
        decision_record(user=reviewer, claim=claim, verdict="not_csam", reason="benign")
    assert Item.objects.filter(state=Item.State.QA).count() == 4
    lanes = queue.reviewer_lanes(second_reviewer)
    assert lanes == ([datasets.pk, None] if named_queues else None)
    sql, params = queue.candidate_statement(second_reviewer, Claim.Stage.QA, lanes, timezone.now())
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    plan = json.dumps(plan if not isinstance(plan, str) else json.loads(plan))
    probes = [node for node in _nodes(json.loads(plan)) if node.get("Relation Name") == "reports_decision"]
    assert len(probes) == (len(lanes) if lanes else 1), plan  # one per queue head
    for node in probes:
        assert node["Index Name"] == "decision_reviewer_item", plan
        assert "item_id" in node["Index Cond"] and "reviewer_id" in node["Index Cond"], plan
    assert queue.item_claim(user=reviewer) is None  # all four are theirs: never their own QA
    assert queue.item_claim(user=second_reviewer).stage == Claim.Stage.QA


def _nodes(plan):
    stack = [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        yield node
        stack += node.get("Plans", [])


def test_the_general_queue_head_is_read_from_its_own_index(reviewer):
    """A reviewer working a named queue and the general one: the general queue's head is read
    in rank order from item_claim_general_rank, not by walking every waiting item by rank and
    dropping those of named queues (which, with a named queue nobody works, made each claim
    slower than the last)."""
    datasets, live = (ReviewQueue.objects.create(name=name, position=i) for i, name in enumerate(["datasets", "live"]))
    reviewer.review_queues.set([live])
    for i in range(60):  # a named queue this reviewer does not work, ranked ahead of everything
        Item.objects.filter(pk=make_item(i, priority=600).pk).update(queue=datasets)
    general = make_item(100, priority=0)
    Item.objects.filter(pk=general.pk).update(queue=None)  # (a queue with no rule takes everything)
    sql, params = queue.candidate_statement(reviewer, Claim.Stage.REVIEW, queue.reviewer_lanes(reviewer), timezone.now())
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a young, tiny table: ask which index serves
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    plan = plan if not isinstance(plan, str) else json.loads(plan)
    scans = [node for node in _nodes(plan) if node.get("Relation Name") == "reports_item" and "Index Name" in node]
    assert "item_claim_general_rank" in {node["Index Name"] for node in scans}, json.dumps(plan)
    assert not [node for node in scans if "queue_id IS NULL" in node.get("Filter", "")], json.dumps(plan)
    assert queue.item_claim(user=reviewer).item_id == general.pk


def test_a_decision_after_an_unreported_reveal_keeps_the_audit_order(reviewer, settings):
    """A reveal whose length the page never reported is closed by the decision: the timeline
    reads the decision, then the reveal's end counted by the server, then the claim's end."""
    from reports.review.reveal import original_fetch

    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    item = make_item(0)
    claim = queue.item_claim(user=reviewer)
    original_fetch(user=reviewer, item=claim.item, claim=claim, mode="hold")  # never reported
    decision_record(user=reviewer, claim=claim, verdict="not_csam", reason="benign")
    actions = list(AuditEvent.objects.filter(item_id=item.pk).order_by("id").values_list("action", flat=True))
    assert actions[-3:] == ["decision.recorded", "media.view_ended", "claim.decided"]
