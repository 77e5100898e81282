"""Concurrency on the real PostgreSQL: many reviewers claiming at once, leases running out
under them, and scanners replaying the same push at the same moment."""

import threading
import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connections, transaction
from django.db.models import Count
from django.utils import timezone
from rest_framework.test import APIClient

from devtools.synthetic import synthetic_image
from reports.audit import audit_record
from reports.errors import Refused
from reports.models import AuditEvent, Claim, Decision, Item, Role, Submission
from reports.review import decisions, queue

from .factories import make_metadata, push, stored_files

pytestmark = pytest.mark.django_db(transaction=True)
THREADS = 32


def in_threads(count: int, work) -> list:
    """Run work(index) in count threads released together; their results, in index order.
    Any exception in a thread fails the test."""
    barrier = threading.Barrier(count)
    results, errors = [None] * count, []

    def run(index):
        try:
            barrier.wait(timeout=30)
            results[index] = work(index)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()  # each thread has its own connection

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    assert not errors, errors
    return results


def reviewers(count: int, prefix: str = "reviewer") -> list:
    group = Group.objects.get_or_create(name=Role.REVIEWER)[0]
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"{prefix}-{i}", password="!") for i in range(count)])  # no password: no hashing
    group.user_set.add(*users)
    return users


def queued(count: int) -> list[int]:
    """Queued items as rows only: claiming never reads the media."""
    now = timezone.now()
    items = Item.objects.bulk_create([
        Item(sha256=f"{i:064x}", md5="0" * 32, sha1="0" * 40, mime_type="image/jpeg", size_bytes=1, width=1, height=1,
             state=Item.State.QUEUED, queued_at=now + timedelta(microseconds=i))
        for i in range(count)])
    return [item.pk for item in items]


def test_32_reviewers_claiming_1000_items_at_once_each_get_every_item_exactly_once(settings):
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0  # decided items leave the queues for good
    item_ids = queued(1000)
    users = reviewers(THREADS)

    def review_until_empty(index):
        user, seen = users[index], []
        while (claim := queue.item_claim(user=user)) is not None:
            seen.append(claim.item_id)
            decisions.decision_record(user=user, claim=claim, verdict="not_csam", reason="benign")
        return seen

    seen = in_threads(THREADS, review_until_empty)

    everything = [item_id for mine in seen for item_id in mine]
    assert sorted(everything) == sorted(item_ids)  # each once: no item twice, none left out
    assert sum(1 for mine in seen if mine) > 1  # the work was shared, not one thread's
    assert Claim.objects.count() == 1000
    assert not Claim.objects.values("item").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert set(Claim.objects.values_list("end", flat=True)) == {Claim.End.DECIDED}
    assert Decision.objects.count() == 1000
    assert Item.objects.filter(state=Item.State.DECIDED).count() == 1000
    assert AuditEvent.objects.filter(action="claim.started").count() == 1000


def test_an_expired_lease_puts_the_item_back_and_the_next_reviewer_gets_it():
    [item_id] = queued(1)
    first, second = reviewers(2)
    claim = queue.item_claim(user=first)
    assert claim.item_id == item_id
    assert queue.item_claim(user=second) is None  # held
    Item.objects.filter(pk=item_id).update(lease_until=timezone.now() - timedelta(seconds=1))

    again = queue.item_claim(user=second)

    assert again.item_id == item_id and again.user == second
    claim.refresh_from_db()
    assert claim.end == Claim.End.EXPIRED
    assert Item.objects.get(pk=item_id).claimed_by == second
    assert AuditEvent.objects.filter(action="claim.expired", subject_id=str(claim.pk)).count() == 1
    with pytest.raises(Refused):  # the first reviewer's lease is over
        decisions.decision_record(user=first, claim=claim, verdict="not_csam", reason="benign")


def test_leases_expiring_while_32_reviewers_claim_return_each_item_once():
    item_ids = queued(THREADS)
    holders, takers = reviewers(THREADS, "holder"), reviewers(THREADS, "taker")
    held = in_threads(THREADS, lambda i: queue.item_claim(user=holders[i]).pk)
    assert Item.objects.filter(state=Item.State.CLAIMED).count() == THREADS
    Item.objects.update(lease_until=timezone.now() - timedelta(seconds=1))  # every lease runs out

    # Every taker's claim first expires leases, racing the others doing the same.
    taken = in_threads(THREADS, lambda i: queue.item_claim(user=takers[i]).item_id)

    assert sorted(taken) == sorted(item_ids)
    assert set(Claim.objects.filter(pk__in=held).values_list("end", flat=True)) == {Claim.End.EXPIRED}
    assert AuditEvent.objects.filter(action="claim.expired").count() == THREADS  # each expired once
    assert Claim.objects.filter(end=Claim.End.OPEN).count() == THREADS
    assert not Claim.objects.filter(end=Claim.End.OPEN).values("item").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert set(Item.objects.values_list("claimed_by__username", flat=True)) == {t.username for t in takers}


def scanner_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_concurrent_replays_of_one_submission_create_one_row(scanner_token, media_root):
    data, metadata = synthetic_image(11), make_metadata("replayed/1")

    responses = in_threads(16, lambda i: push(scanner_client(scanner_token), data, metadata))

    assert sorted(r.status_code for r in responses) == [200] * 15 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert Submission.objects.count() == 1 and Item.objects.count() == 1
    assert AuditEvent.objects.filter(action="submission.created").count() == 1
    # The losers' encrypted copies were removed: the original and its previews, nothing else.
    item = Item.objects.get()
    assert {p.relative_to(media_root).as_posix() for p in stored_files(media_root)} == {
        item.original_blob, *item.previews.values()}


def test_concurrent_pushes_of_the_same_bytes_share_one_item_and_one_stored_file(scanner_token, media_root):
    data = synthetic_image(12)

    responses = in_threads(16, lambda i: push(scanner_client(scanner_token), data, make_metadata(f"same-bytes/{i}")))

    assert [r.status_code for r in responses] == [201] * 16
    assert Item.objects.count() == 1 and Submission.objects.count() == 16
    assert sorted(r.json()["duplicate"] for r in responses) == [False] + [True] * 15
    item = Item.objects.get()
    assert {p.relative_to(media_root).as_posix() for p in stored_files(media_root)} == {
        item.original_blob, *item.previews.values()}


def test_a_duplicate_push_while_the_item_is_locked_by_its_previews_waits_instead_of_deadlocking(scanner_token, media_root):
    """The previews task, claims and decisions lock an item and then write an audit event. A
    push of the same bytes meanwhile must take the item before the audit head too; taking the
    head first deadlocked (its foreign-key check on the item ran at COMMIT, holding the head)."""
    data = synthetic_image(13)
    assert push(scanner_client(scanner_token), data, make_metadata("first")).status_code == 201
    item = Item.objects.get()
    locked = threading.Event()

    def work(index):
        if index == 0:  # what item_previews_make, item_claim and decision_record do
            with transaction.atomic():
                Item.objects.select_for_update().get(pk=item.pk)
                locked.set()
                time.sleep(1)  # let the push get as far as it can meanwhile
                audit_record(actor=None, action="item.touched", subject=item, item_id=item.pk)
            return None
        assert locked.wait(timeout=30)
        return push(scanner_client(scanner_token), data, make_metadata("second")).status_code

    assert in_threads(2, work) == [None, 201]
    assert Submission.objects.filter(item=item).count() == 2
