"""The scanner rate limit (reports/api/throttle.py): an atomic count per scanner and window,
taken before a push is read; a push over it answers 429 with how long to wait, and stores
nothing. Across processes and nodes: test_two_nodes.py."""

import pytest
from django.core.cache import cache

from reports.api.throttle import ScannerRateThrottle
from reports.models import Item, Submission

from .factories import make_metadata, make_scanner, push, stored_files

pytestmark = pytest.mark.django_db
START = 1_800_000_000.0  # a window's first second (a multiple of 60)


@pytest.fixture
def clock(monkeypatch):
    now = [START + 10]
    monkeypatch.setattr(ScannerRateThrottle, "THROTTLE_RATES", {"scanner": "3/min"})
    monkeypatch.setattr(ScannerRateThrottle, "timer", lambda self: now[0])
    return now


def test_pushes_over_the_rate_are_refused_with_the_wait_and_store_nothing(api, clock, media_root):
    answers = [push(api, seed=n, metadata=make_metadata(f"rate/{n}")) for n in range(4)]
    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    refused = answers[3]
    assert int(refused["Retry-After"]) == 50
    assert refused.json() == {"errors": {"rate": ["Request was throttled. Expected available in 50 seconds."]}}
    assert Submission.objects.count() == 3 and Item.objects.count() == 3
    assert len(stored_files(media_root)) == 3  # the refused push's file was never written


def test_the_count_starts_again_in_the_next_window_and_is_per_scanner(api, clock, media_root):
    from rest_framework.test import APIClient

    for n in range(3):
        assert push(api, seed=n, metadata=make_metadata(f"rate/{n}")).status_code == 201
    assert push(api, seed=9, metadata=make_metadata("rate/9")).status_code == 429
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {make_scanner('second')}")
    assert push(other, seed=10, metadata=make_metadata("rate/10")).status_code == 201  # its own count
    clock[0] = START + 60  # the next minute
    assert push(api, seed=9, metadata=make_metadata("rate/9")).status_code == 201


def test_the_count_is_one_counter_in_the_cache_not_a_list_of_times(api, clock, media_root):
    push(api, seed=1)
    push(api, seed=2, metadata=make_metadata("rate/2"))
    scanner = Submission.objects.first().scanner
    assert cache.get(f"throttle_scanner_{scanner.pk}:{int(START // 60)}") == 2
    assert cache.get(f"throttle_scanner_{scanner.pk}") is None  # DRF's list of request times is not kept
