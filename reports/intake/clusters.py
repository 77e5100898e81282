"""Near-duplicates: PDQ neighbours by multi-index hashing, and a new item joining a cluster.

A PDQ hash is 256 bits. Split into 16 chunks of 16 bits, two hashes that differ in at most d
bits agree exactly on at least 16 − d chunks (pigeonhole: d differing bits touch at most d
chunks); for d ≤ 15 that is at least one. So a lookup asks the 16 (chunk, id) indexes of
PdqIndex for exact chunk matches, keeps the rows that match at least 16 − d chunks (counted from
the indexes alone), then computes the true Hamming distance on those rows only. The same SQL
runs on PostgreSQL and on SQLite (the embedded mode): there is no separate fallback to drift.

A new item (its previews made) whose PDQ is within TSREVIEW_CLUSTER_DISTANCE of a waiting
item's joins that item's cluster: it waits (state `clustered`) with the representative and is
reviewed in the same task (review/clusters.py). docs/clusters.md says how the distance was chosen.
"""

from collections import defaultdict

from django.conf import settings
from django.db import connection

from ..audit import audit_record
from ..models import Item, PdqIndex
from .routing import rank_time

CHUNKS = 16
# PDQ's own advice: hashes of quality below 50 (flat, featureless pictures) are not reliable
# for matching. Such items are never clustered; they are reviewed on their own.
MIN_QUALITY = 50
# Rows that pass the chunk count but are far away are rare (a family of pictures sharing most
# chunks); a lookup reads at most this many of them.
MAX_CANDIDATES = 2000
# A video is a near-duplicate of another when this share of its sampled frames has a frame of
# the other within the distance.
VIDEO_FRAME_SHARE = 0.8


def pdq_chunks(pdq: str) -> list[int]:
    """The 16 chunks of 16 bits of a 64-hex-digit PDQ hash."""
    return [int(pdq[4 * i:4 * i + 4], 16) for i in range(CHUNKS)]


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def cluster_distance() -> int:
    """The setting, which multi-index hashing with 16 chunks can answer exactly up to 15."""
    distance = int(settings.TSREVIEW_CLUSTER_DISTANCE)
    if not 0 <= distance < CHUNKS:
        raise ValueError("TSREVIEW_CLUSTER_DISTANCE must be between 0 and 15 (16 chunks of PDQ)")
    return distance


def pdq_index_rows(item: Item) -> list[PdqIndex]:
    """The index rows an item should have: its PDQ, or each sampled frame's of a video."""
    if item.is_video:
        hashes = list(enumerate(item.frame_pdqs or []))
    else:
        hashes = [(None, item.pdq)] if item.pdq else []
    return [PdqIndex(item=item, frame=frame, hash=value, **{f"c{i}": c for i, c in enumerate(pdq_chunks(value))})
            for frame, value in hashes if len(value) == 64]


def pdq_index_add(item: Item) -> int:
    """Index an item's hashes (once): one statement writes its rows unless it has some already
    (an item restored after a purge keeps its rows). Returns the rows written. The same SQL runs
    on PostgreSQL and SQLite; each value is cast, so a column of NULLs (a picture's frame) is
    typed as its column."""
    rows = pdq_index_rows(item)
    if not rows:
        return 0
    table = connection.ops.quote_name(PdqIndex._meta.db_table)
    casts = {"item_id": "bigint", "frame": "smallint", "hash": "varchar(64)", **{f"c{i}": "integer" for i in range(CHUNKS)}}
    one = "SELECT " + ", ".join(f"CAST(%s AS {kind})" for kind in casts.values())
    sql = (f"INSERT INTO {table} ({', '.join(casts)}) SELECT * FROM ({' UNION ALL '.join([one] * len(rows))}) AS new "
           f"WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE item_id = %s)")
    params = [value for row in rows for value in (item.pk, row.frame, row.hash, *(getattr(row, f"c{i}") for i in range(CHUNKS)))]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, item.pk])
        return cursor.rowcount


def pdq_neighbours(pdq: str, *, distance: int | None = None, states=None, exclude_item=None, videos: bool | None = None
                   ) -> list[tuple[int, int | None, int]]:
    """Indexed hashes within `distance` of `pdq`: (item id, frame, distance), nearest first.

    Within distance d, at most d of the 16 chunks hold a differing bit, so at least 16 − d
    chunks agree exactly. One statement asks each chunk's (chunk, id) index for its exact
    matches (index-only scans), counts the matches per row and reads only the rows with at
    least 16 − d, for the exact distance computed here. Then, if `states` is given and
    something is near, one query keeps those of items in these states. The same SQL runs on PostgreSQL and SQLite."""
    distance = cluster_distance() if distance is None else distance
    if not 0 <= distance < CHUNKS:
        raise ValueError("multi-index hashing with 16 chunks answers distances up to 15")
    table = connection.ops.quote_name(PdqIndex._meta.db_table)
    arms = " UNION ALL ".join(f"SELECT id FROM {table} WHERE c{i} = %s" for i in range(CHUNKS))
    where, params = "", []
    if exclude_item is not None:
        where += " AND item_id <> %s"
        params.append(exclude_item)
    if videos is not None:
        where += f" AND frame IS {'NOT ' if videos else ''}NULL"
    sql = (f"SELECT item_id, frame, hash FROM {table} WHERE id IN "
           f"(SELECT id FROM ({arms}) AS hits GROUP BY id HAVING COUNT(*) >= %s){where} LIMIT %s")
    with connection.cursor() as cursor:  # one round trip: the counted candidates and their rows
        cursor.execute(sql, [*pdq_chunks(pdq), CHUNKS - distance, *params, MAX_CANDIDATES])
        rows = cursor.fetchall()
    found = []
    for item_id, frame, value in rows:
        d = hamming(pdq, value)
        if d <= distance:
            found.append((item_id, frame, d))
    if states is not None and found:
        keep = set(Item.objects.filter(pk__in={row[0] for row in found}, state__in=list(states)).values_list("pk", flat=True))
        found = [row for row in found if row[0] in keep]
    return sorted(found, key=lambda row: (row[2], row[0], row[1] or 0))


def _waiting_reps(item: Item, distance: int) -> dict[int, int]:
    """Representatives of waiting clusters near this item: {representative id: distance}.

    A neighbour waiting on its own (queued) is a representative; a neighbour waiting in a
    cluster points at its representative. The distance is to the representative itself, and
    only representatives within the distance count, so a cluster never drifts by chaining."""
    waiting = (Item.State.QUEUED, Item.State.CLUSTERED)
    if item.is_video:
        own = [p for p in item.frame_pdqs or [] if len(p) == 64]
        if not own:
            return {}
        best: dict[int, list[int]] = defaultdict(list)
        for value in own:
            per_item: dict[int, int] = {}
            for other, _, d in pdq_neighbours(value, distance=distance, states=waiting, exclude_item=item.pk, videos=True):
                per_item[other] = min(d, per_item.get(other, d))
            for other, d in per_item.items():
                best[other].append(d)
        near = {other: sorted(ds)[len(ds) // 2] for other, ds in best.items() if len(ds) >= VIDEO_FRAME_SHARE * len(own)}
    else:
        if not item.pdq or (item.pdq_quality or 0) < MIN_QUALITY:
            return {}
        near = {other: d for other, _, d in pdq_neighbours(item.pdq, distance=distance, states=waiting,
                                                             exclude_item=item.pk, videos=False)}
    if not near:
        return {}
    reps = {}
    for other in Item.objects.filter(pk__in=list(near)).only("pk", "state", "cluster_of_id"):
        rep_id = other.cluster_of_id if other.state == Item.State.CLUSTERED else other.pk
        if rep_id is None:
            continue
        d = near[other.pk] if rep_id == other.pk else _distance_between(item, rep_id)
        if d is not None and d <= distance:
            reps[rep_id] = min(d, reps.get(rep_id, d))
    return reps


def _distance_between(item: Item, other_id: int) -> int | None:
    other = Item.objects.filter(pk=other_id).only("pdq", "frame_pdqs", "mime_type").first()
    if other is None:
        return None
    if item.is_video != other.is_video:
        return None
    if not item.is_video:
        return hamming(item.pdq, other.pdq) if item.pdq and other.pdq else None
    pairs = [hamming(a, b) for a, b in zip(item.frame_pdqs or [], other.frame_pdqs or [], strict=False)]
    return sorted(pairs)[len(pairs) // 2] if pairs else None


def cluster_candidate(item: Item) -> tuple[int, int] | None:
    """(representative id, distance) of the nearest waiting cluster this item may join, or None.
    Read before the preview transaction; cluster_join checks it again under the lock."""
    if not settings.TSREVIEW_CLUSTERS:
        return None
    distance = cluster_distance()
    reps = _waiting_reps(item, distance)
    if not reps:
        return None
    rep_id = min(reps, key=lambda r: (reps[r], r))
    return rep_id, reps[rep_id]


def cluster_join(item: Item, candidate: tuple[int, int] | None) -> Item | None:
    """Inside the preview transaction (the new item locked): lock the representative and, if it
    still waits for a first review, make the item a member. Returns the representative, or None
    (the item is then queued on its own). Audited by the caller's item.clustered event."""
    if candidate is None:
        return None
    rep = Item.objects.select_for_update(no_key=True).filter(pk=candidate[0], state=Item.State.QUEUED,
                                                               cluster_of__isnull=True).first()
    if rep is None:
        return None
    if item.priority > rep.priority or (item.urgent and not rep.urgent):
        # The task waits as urgently as its most urgent member.
        priority, urgent = max(item.priority, rep.priority), item.urgent or rep.urgent
        Item.objects.filter(pk=rep.pk).update(priority=priority, urgent=urgent,
                                              rank_at=rank_time(rep.queued_at, priority, urgent))
    return rep


def cluster_join_audit(item: Item, rep: Item, distance: int) -> None:
    audit_record(actor=None, action="item.clustered", subject=item, item_id=item.pk,
                 data={"from": Item.State.NEW, "to": Item.State.CLUSTERED, "representative": rep.pk, "distance": distance})
