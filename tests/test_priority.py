"""Priority routing: the policy's order, named queues, the urgent flag, and the admin."""

from datetime import timedelta

import pytest
from django.utils import timezone

from reports.intake.routing import item_urgent_set, priorities_recompute, priority_score, rank_time
from reports.models import AuditEvent, Claim, Item, PriorityPolicy, ReviewQueue
from reports.review.decisions import decision_record
from reports.review.queue import item_claim

from .factories import make_item, make_metadata, make_user

pytestmark = pytest.mark.django_db

UPLOADER = {"esp_identifier": "u-81", "screen_name": "someone", "email": None, "profile_url": None,
            "ip_events": [{"ip": "203.0.113.7", "event": "Upload", "at": "2026-11-01T10:00:00Z", "port": 443}],
            "device_ids": []}


def sighting(n, *, label="A1", source="third_party_dataset", distance=12, threshold=31, uploader=False, bank="NCMEC"):
    metadata = make_metadata(f"priority/{n}")
    metadata["matches"] = [{"hash_type": "pdq", "hash_value": "f8" * 32, "list": bank, "list_entry_id": str(n),
                            "distance": distance, "threshold": threshold, "label": label}]
    metadata["provenance"] = {**metadata["provenance"], "source_type": source}
    if uploader:
        metadata["provenance"]["uploader"] = UPLOADER
    return metadata


def claimed_order(user, n):
    order = []
    for _ in range(n):
        claim = item_claim(user=user)
        order.append(claim.item_id)
        Item.objects.filter(pk=claim.item_id).update(state="decided")  # out of the way, not a real decision
        claim.end = "decided"
        claim.save(update_fields=["end"])
    return order


def test_the_default_policy_orders_label_source_and_distance(reviewer):
    b2 = make_item(1, metadata=sighting(1, label="B2"))
    a1_far = make_item(2, metadata=sighting(2, label="A1", distance=30))
    a1_near = make_item(3, metadata=sighting(3, label="A1", distance=0))
    live = make_item(4, metadata=sighting(4, label="A1", distance=30, source="user_upload", uploader=True))
    assert [i.priority for i in (b2, a1_far, a1_near, live)] == [100 + 61, 400 + 3, 400 + 100, 400 + 300 + 3]
    assert claimed_order(reviewer, 4) == [live.pk, a1_near.pk, a1_far.pk, b2.pk]


def test_waiting_time_counts_a_point_is_a_minute(reviewer):
    fresh_a1 = make_item(1, metadata=sighting(1, label="A1", distance=31))  # 400
    old_b2 = make_item(2, metadata=sighting(2, label="B2", distance=31))  # 100: 300 points = 5 hours behind
    long_ago = timezone.now() - timedelta(hours=6)
    Item.objects.filter(pk=old_b2.pk).update(queued_at=long_ago, rank_at=rank_time(long_ago, old_b2.priority, False))
    assert claimed_order(reviewer, 2) == [old_b2.pk, fresh_a1.pk]


def test_an_urgent_item_goes_first_and_the_flag_is_audited(reviewer, lead):
    items = [make_item(n, metadata=sighting(n, label="A1", distance=0, source="user_upload", uploader=True)) for n in (1, 2)]
    low = make_item(3, metadata=sighting(3, label="B2", distance=31))
    item_urgent_set(item_id=low.pk, urgent=True, actor=lead, why="escalateToHighPriority on a report")
    event = AuditEvent.objects.get(action="item.urgent", item_id=low.pk)
    assert event.data == {"urgent": True, "why": "escalateToHighPriority on a report"} and event.actor_name == "lena"
    assert claimed_order(reviewer, 3) == [low.pk, items[0].pk, items[1].pk]


def test_named_queues_route_items_and_a_claim_takes_the_best_of_the_reviewers_queues(reviewer, second_reviewer):
    live = ReviewQueue.objects.create(name="live uploads", position=1, source_types=["user_upload"])
    datasets = ReviewQueue.objects.create(name="datasets", position=2, source_types=["third_party_dataset", "web_crawl"])
    ReviewQueue.objects.create(name="video", position=0, media="video")
    upload = make_item(1, metadata=sighting(1, label="A1", source="user_upload", uploader=True))
    data_a1 = make_item(2, metadata=sighting(2, label="A1"))
    data_b2 = make_item(3, metadata=sighting(3, label="B2"))
    general = make_item(4, metadata=sighting(4, label="A2", source="storage_scan"))
    assert [i.queue for i in (upload, data_a1, data_b2, general)] == [live, datasets, datasets, None]
    datasets.members.add(reviewer)
    # A dataset reviewer never gets the live upload, though it ranks first; they get their
    # queue's best and the general queue's in rank order.
    assert claimed_order(reviewer, 3) == [general.pk, data_a1.pk, data_b2.pk]
    assert item_claim(user=reviewer) is None
    # A reviewer in no queue takes from all.
    assert item_claim(user=second_reviewer).item_id == upload.pk


def test_blind_qa_follows_the_reviewers_queues_and_is_never_of_their_own_decisions(reviewer, second_reviewer, settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 100
    datasets = ReviewQueue.objects.create(name="datasets", position=1, source_types=["third_party_dataset"])
    live = ReviewQueue.objects.create(name="live uploads", position=2, source_types=["user_upload"])
    datasets.members.add(reviewer)

    def decided(user, seed, queue, priority):
        item = make_item(seed, priority=priority)
        Item.objects.filter(pk=item.pk).update(queue=queue)
        claim = item_claim(user=user, stages=(Claim.Stage.REVIEW,))  # QA comes first otherwise
        assert claim.item_id == item.pk
        decision_record(user=user, claim=claim, verdict="not_csam", reason="benign")
        assert Item.objects.get(pk=item.pk).state == Item.State.QA
        return item

    # The reviewer's own decisions rank first in their queue: more of them than a queue's head holds.
    own = [decided(reviewer, n, datasets, 600) for n in range(5)]
    theirs = decided(second_reviewer, 10, datasets, 0)
    elsewhere = decided(second_reviewer, 11, live, 300)  # ranks ahead, in a queue the reviewer does not work
    qa = item_claim(user=reviewer)
    assert qa.stage == Claim.Stage.QA and qa.item_id == theirs.pk
    decision_record(user=reviewer, claim=qa, verdict="not_csam", reason="benign")
    assert item_claim(user=reviewer) is None  # their own five, and one outside their queues
    # A reviewer in no queue takes QA from all, never of an item they decided.
    got = item_claim(user=second_reviewer)
    assert got.stage == Claim.Stage.QA and got.item_id in {item.pk for item in own}
    assert Item.objects.get(pk=elsewhere.pk).state == Item.State.QA


def test_a_cluster_waits_as_urgently_as_its_most_urgent_member(reviewer):
    from .factories import make_variant

    rep = make_item(7, metadata=sighting(1, label="B2"))
    other = make_item(8, metadata=sighting(2, label="A1"))
    member = make_variant(7, "reencode", amount=40, metadata=sighting(3, label="A1", source="user_upload", uploader=True))
    assert member.cluster_of_id == rep.pk
    rep.refresh_from_db()
    assert rep.priority == member.priority > other.priority
    assert item_claim(user=reviewer).item_id == rep.pk


def test_a_policy_change_re_ranks_the_waiting_items(reviewer):
    b2 = make_item(1, metadata=sighting(1, label="B2"))
    a1 = make_item(2, metadata=sighting(2, label="A1"))
    policy = PriorityPolicy.current()
    policy.label_points = {"A1": 0, "B2": 1000}
    policy.save()
    assert priorities_recompute() == 2
    assert AuditEvent.objects.filter(action="priority.recomputed").count() == 1
    assert priority_score(Item.objects.get(pk=b2.pk)) > priority_score(Item.objects.get(pk=a1.pk))
    assert claimed_order(reviewer, 2) == [b2.pk, a1.pk]


def test_a_new_queue_takes_the_waiting_items_its_rule_matches_when_priorities_are_recomputed():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    upload = make_item(1, metadata=sighting(1, source="user_upload", uploader=True))
    dataset = make_item(2, metadata=sighting(2))
    crawl = make_item(3, metadata=sighting(3, source="web_crawl"))
    live = ReviewQueue.objects.create(name="live uploads", position=1, source_types=["user_upload", "web_crawl"])
    with CaptureQueriesContext(connection) as queries:
        assert priorities_recompute() == 2
    assert [Item.objects.get(pk=i.pk).queue for i in (upload, dataset, crawl)] == [live, None, live]
    table = ReviewQueue._meta.db_table
    assert sum(f'FROM "{table}"' in q["sql"] for q in queries.captured_queries) == 1  # read once for the run


@pytest.mark.parametrize("field,value,message", [
    ("label_points", '{"A1": "high"}', "A1: points must be a whole number"),
    ("label_points", '["A1"]', "Give an object of names and points"),
    ("source_points", '{"carrier_pigeon": 5}', "carrier_pigeon: not a source type"),
])
def test_the_admin_refuses_a_bad_policy_and_audits_a_good_one(client, field, value, message):
    admin = make_user("ada", "admin")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    client.force_login(admin)
    policy = PriorityPolicy.current()
    form = {"label_points": '{"A1": 400, "A2": 300, "B1": 200, "B2": 100}', "source_points": '{"user_upload": 200}',
            "list_points": "{}", "distance_points": "100", "seconds_per_point": "60"}
    response = client.post(f"/admin/reports/prioritypolicy/{policy.pk}/change/", {**form, field: value})
    assert response.status_code == 200 and message in response.content.decode()
    assert PriorityPolicy.current().source_points == policy.source_points
    assert not AuditEvent.objects.filter(action="prioritypolicy.changed").exists()
    response = client.post(f"/admin/reports/prioritypolicy/{policy.pk}/change/", {**form, "list_points": '{"IWF": 50}'})
    assert response.status_code == 302
    assert PriorityPolicy.current().list_points == {"IWF": 50}
    assert AuditEvent.objects.get(action="prioritypolicy.changed").data["new"]["list_points"] == {"IWF": 50}
