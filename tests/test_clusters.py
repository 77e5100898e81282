"""Near-duplicate clusters: PDQ neighbours by multi-index hashing, and which items join."""

import random

import pytest

from devtools.synthetic import synthetic_image, synthetic_variant
from reports.intake.clusters import hamming, pdq_index_add, pdq_neighbours
from reports.models import AuditEvent, Item, PdqIndex
from reports.review.queue import item_claim

from .factories import make_item, make_variant

# synthetic_image(7, size=(320, 240)) and its near-copies: devtools/pdq_distances.py measures
# these edits over 60 pictures (docs/clusters.md); for this picture they move PDQ by 4 (re-encode
# at quality 40), 10 (resized to 75 %), 6 (0.5 % cropped) and 4 (10 % brighter) bits; 2 % cropped
# moves it 14 bits, past the default distance of 12.
SEED = 7
NEAR = [("reencode", 40), ("resize", 0.75), ("crop", 0.005), ("brightness", 0.1)]


@pytest.mark.django_db
@pytest.mark.parametrize("kind,amount", NEAR)
def test_a_near_copy_joins_the_waiting_original(kind, amount):
    original = make_item(SEED)
    copy = make_variant(SEED, kind, amount=amount)
    assert copy.pk != original.pk  # other bytes: another item
    assert copy.state == Item.State.CLUSTERED
    assert copy.cluster_of_id == original.pk
    assert copy.cluster_distance == hamming(copy.pdq, original.pdq) <= 12
    original.refresh_from_db()
    assert original.state == Item.State.QUEUED and original.cluster_of_id is None
    event = AuditEvent.objects.get(action="item.clustered", item_id=copy.pk)
    assert event.data == {"from": "new", "to": "clustered", "representative": original.pk, "distance": copy.cluster_distance}
    assert not AuditEvent.objects.filter(action="item.queued", item_id=copy.pk).exists()


@pytest.mark.django_db
def test_different_pictures_of_the_same_size_stay_apart():
    items = [make_item(seed) for seed in (SEED, 8, 9, 1007)]
    assert [i.state for i in items] == [Item.State.QUEUED] * 4
    assert all(i.cluster_of_id is None for i in items)
    assert min(hamming(a.pdq, b.pdq) for a in items for b in items if a.pk < b.pk) > 90


@pytest.mark.django_db
def test_a_copy_past_the_distance_is_reviewed_on_its_own(settings):
    original = make_item(SEED)
    cropped = make_variant(SEED, "crop", amount=0.02)  # 14 bits away
    assert hamming(cropped.pdq, original.pdq) == 14
    assert cropped.state == Item.State.QUEUED and cropped.cluster_of_id is None


@pytest.mark.django_db
def test_a_wider_distance_takes_that_copy_in(settings):
    settings.TSREVIEW_CLUSTER_DISTANCE = 15  # a team that wants more recall can say so
    original = make_item(SEED)
    cropped = make_variant(SEED, "crop", amount=0.02)
    assert (cropped.state, cropped.cluster_of_id, cropped.cluster_distance) == (Item.State.CLUSTERED, original.pk, 14)


@pytest.mark.django_db
def test_members_join_the_representative_not_each_other():
    original = make_item(SEED)
    copies = [make_variant(SEED, kind, amount=amount) for kind, amount in NEAR]
    assert {c.cluster_of_id for c in copies} == {original.pk}
    assert Item.objects.filter(cluster_of=original, state=Item.State.CLUSTERED).count() == 4
    # Only the representative is in the queue: one claim, one task.
    assert Item.objects.filter(state=Item.State.QUEUED).count() == 1


@pytest.mark.django_db
def test_a_copy_of_an_item_already_claimed_waits_on_its_own(reviewer):
    original = make_item(SEED)
    claim = item_claim(user=reviewer)
    assert claim.item_id == original.pk
    copy = make_variant(SEED, "reencode", amount=40)
    assert copy.state == Item.State.QUEUED and copy.cluster_of_id is None


@pytest.mark.django_db
def test_clusters_can_be_turned_off(settings):
    settings.TSREVIEW_CLUSTERS = False
    make_item(SEED)
    assert make_variant(SEED, "reencode", amount=40).state == Item.State.QUEUED


@pytest.mark.django_db
def test_multi_index_lookup_finds_exactly_what_brute_force_finds():
    """Random hashes with planted neighbours at 0..15 bits: the indexed lookup answers the same
    as comparing with every hash, for every distance up to 15."""
    rng = random.Random(15)
    base = make_item(1)
    hashes = {}
    for n in range(300):
        value = rng.getrandbits(256)
        if n < 64:  # planted: the query with n % 16 bits flipped
            value = int(QUERY, 16)
            for bit in rng.sample(range(256), n % 16):
                value ^= 1 << bit
        hashes[n] = f"{value:064x}"
    PdqIndex.objects.all().delete()
    for n, value in hashes.items():
        PdqIndex.objects.create(item=base, frame=n, hash=value,
                                **{f"c{i}": int(value[4 * i:4 * i + 4], 16) for i in range(16)})
    for distance in (0, 4, 12, 15):
        found = {frame for _, frame, _ in pdq_neighbours(QUERY, distance=distance)}
        expected = {n for n, value in hashes.items() if hamming(QUERY, value) <= distance}
        assert found == expected
        assert len(expected) >= 4 * (distance + 1)
    with pytest.raises(ValueError):
        pdq_neighbours(QUERY, distance=16)


QUERY = "9b" * 32


@pytest.mark.django_db
def test_an_item_is_indexed_once():
    item = make_item(SEED)
    assert PdqIndex.objects.filter(item=item).count() == 1
    assert pdq_index_add(item) == 0
    row = PdqIndex.objects.get(item=item)
    assert row.hash == item.pdq and row.c0 == int(item.pdq[:4], 16) and row.c15 == int(item.pdq[60:], 16)


def test_variants_are_the_near_copies_they_claim_to_be():
    original = synthetic_image(SEED, size=(320, 240))
    with pytest.raises(ValueError):
        synthetic_variant(original, "mirror")


def test_the_same_lookup_works_on_sqlite_for_the_embedded_mode(tmp_path):
    """The suite runs on PostgreSQL; the embedded default is SQLite: the same SQL, checked in a
    child process on a fresh SQLite database."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from .factories import TEST_MEDIA_KEY

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'embedded.sqlite3'}", "TSREVIEW_MEDIA_KEY": TEST_MEDIA_KEY,
           "PYTHONPATH": str(root), "TSREVIEW_VAR_DIR": str(tmp_path)}
    env.pop("CELERY_BROKER_URL", None)
    out = subprocess.run([sys.executable, str(root / "tests/support/sqlite_pdq.py")], env=env, cwd=root,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[:5] == ["0 True 4", "4 True 20", "12 True 52", "15 True 64", "index 1 0 True 2 True"]


@pytest.mark.django_db
def test_a_re_encoded_video_joins_the_waiting_video_by_its_frames():
    """The same synthetic video as H.264/MP4 and as VP9/WebM: other bytes, near frames."""
    from devtools.synthetic import synthetic_video
    from reports.intake.previews import item_previews_make
    from reports.intake.submission import submission_push
    from reports.models import Scanner

    from .factories import make_metadata, make_scanner

    make_scanner("video-scanner")
    scanner = Scanner.objects.get(name="video-scanner")

    def push(data, n):
        result = submission_push(scanner=scanner, document=make_metadata(f"video/{n}"), data=data, claimed_type="")
        return item_previews_make(item_id=result.submission.item_id)

    first = push(synthetic_video(5, seconds=3, size=(320, 240)), 1)
    other = push(synthetic_video(6, seconds=3, size=(320, 240)), 2)  # a different video
    copy = push(synthetic_video(5, seconds=3, size=(320, 240), codec="libvpx-vp9", container="webm"), 3)
    assert first.is_video and copy.is_video and copy.sha256 != first.sha256
    assert PdqIndex.objects.filter(item=first, frame__isnull=False).count() == len(first.frame_pdqs) > 1
    assert other.state == Item.State.QUEUED and other.cluster_of_id is None
    assert (copy.state, copy.cluster_of_id) == (Item.State.CLUSTERED, first.pk)
    assert copy.cluster_distance <= 12
