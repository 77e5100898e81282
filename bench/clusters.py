"""9. Near-duplicate lookup (PDQ neighbours by multi-index hashing).

1,000,000 items with random PDQ hashes, each with its PdqIndex row (16 16-bit chunks, each
with its (chunk, id) index), inserted with one INSERT … SELECT generate_series; one in three is waiting (queued).
Then lookups as intake makes them (intake.clusters.pdq_neighbours within the default distance
12, waiting items only): half of them are near-copies of a stored hash (1–12 bits flipped, which
must be found), half are fresh random hashes (nothing to find). The latency of each lookup,
measured in this process against PostgreSQL, and a check that every planted neighbour was found.
Random hashes spread evenly over the chunks (about 15 rows per chunk value at this size); a
family of real pictures with shared chunk values would read more candidates (MAX_CANDIDATES
bounds that).
"""

import random
import time

from . import stack

LOOKUPS = 2000

ITEMS_SQL = """
INSERT INTO reports_item (sha256, md5, sha1, pdq, pdq_quality, mime_type, size_bytes, width, height, frames,
                          original_blob, previews, state, priority, verdict, created_at, queued_at, frame_times, frame_pdqs,
                          duration_seconds, unreviewable_reason, urgent)
SELECT encode(sha256(('bench-' || g)::bytea), 'hex'), md5(g::text), substr(md5('s' || g) || md5('t' || g), 1, 40),
       md5('p' || g) || md5('q' || g), 100, 'image/jpeg', 100000, 1024, 768, 1, '', '{}'::jsonb,
       CASE WHEN g %% 3 = 0 THEN 'queued' ELSE 'decided' END, 0, '',
       now() - interval '2 days', now() - interval '2 days' + g * interval '100 ms', '[]'::jsonb, '[]'::jsonb, NULL, '', false
FROM generate_series(1, %s) AS g
"""

INDEX_SQL = """
INSERT INTO reports_pdqindex (item_id, frame, hash, c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15)
SELECT id, NULL, pdq, """ + ", ".join(f"('x' || substr(pdq, {4 * i + 1}, 4))::bit(16)::int" for i in range(16)) + """
FROM reports_item
"""


def rows_insert(n: int) -> float:
    from django.db import connection

    t = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(ITEMS_SQL, [n])
        cursor.execute(INDEX_SQL)
        cursor.execute("VACUUM (ANALYZE) reports_item")
        cursor.execute("VACUUM (ANALYZE) reports_pdqindex")
    return time.perf_counter() - t


def explain(pdq: str) -> str:
    """The plan of the lookup's candidate statement (the one intake.clusters.pdq_neighbours runs)."""
    from django.db import connection

    from reports.intake.clusters import CHUNKS, pdq_chunks

    arms = " UNION ALL ".join(f"SELECT id FROM reports_pdqindex WHERE c{i} = %s" for i in range(CHUNKS))
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE) SELECT item_id, frame, hash FROM reports_pdqindex WHERE id IN "
                       f"(SELECT id FROM ({arms}) AS hits GROUP BY id HAVING COUNT(*) >= %s) LIMIT 2000",
                       [*pdq_chunks(pdq), CHUNKS - 12])
        return "\n".join(row[0] for row in cursor.fetchall())


def run(n_items: int | None = None) -> dict:
    from django.db import connection

    from reports.intake.clusters import hamming, pdq_neighbours
    from reports.models import Item

    n = n_items or stack.scaled(1_000_000, 1000)
    setup = rows_insert(n)
    stack.say(f"{n} items with PDQ index rows inserted and analysed in {setup:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('reports_pdqindex'))")
        size = cursor.fetchone()[0]
    rng = random.Random(9)
    waiting = list(Item.objects.filter(state=Item.State.QUEUED).order_by("?").values_list("pk", "pdq")[:LOOKUPS // 2])
    queries = []
    for pk, pdq in waiting:
        value = int(pdq, 16)
        for bit in rng.sample(range(256), rng.randint(1, 12)):
            value ^= 1 << bit
        queries.append((f"{value:064x}", pk))
    queries += [(f"{rng.getrandbits(256):064x}", None) for _ in range(LOOKUPS - len(queries))]
    rng.shuffle(queries)
    stack.say("lookup plan:\n  " + explain(queries[0][0]).replace("\n", "\n  "))
    for pdq, _ in queries[:50]:  # warm the connection and the caches as a running server has them
        pdq_neighbours(pdq, distance=12, states=[Item.State.QUEUED, Item.State.CLUSTERED])
    times, floor, missed, found_other = [], [], 0, 0
    for pdq, planted in queries:
        t = time.perf_counter()
        found = pdq_neighbours(pdq, distance=12, states=[Item.State.QUEUED, Item.State.CLUSTERED])
        times.append((time.perf_counter() - t) * 1000)
        with connection.cursor() as cursor:  # the machine's floor, under the same load
            t = time.perf_counter()
            cursor.execute("SELECT 1")
            cursor.fetchone()
            floor.append((time.perf_counter() - t) * 1000)
        ids = {item_id for item_id, _, _ in found}
        if planted is not None and planted not in ids:
            missed += 1
        found_other += len(ids - {planted})
    p50, p99 = stack.percentile(times, 50), stack.percentile(times, 99)
    stack.say(f"{len(times)} lookups within 12 bits among {n:,} indexed hashes ({size}): p50 {p50:.2f} ms, "
              f"p99 {p99:.2f} ms, max {max(times):.1f} ms; planted neighbours missed: {missed}; other hashes found: {found_other}; "
              f"SELECT 1 round trip meanwhile: p50 {stack.percentile(floor, 50):.2f} ms, p99 {stack.percentile(floor, 99):.2f} ms")
    assert hamming("0" * 64, "f" + "0" * 63) == 4
    rows = [
        (f"PDQ neighbour lookup (distance 12, waiting items) among {n:,} indexed items, {len(times)} lookups "
         f"(half near-copies, half fresh): p50 {p50:.2f} ms, p99 {p99:.2f} ms; planted neighbours missed {missed} "
         f"(SELECT 1 meanwhile: p99 {stack.percentile(floor, 99):.2f} ms)",
         "p99 ≤ 20 ms, none missed", "yes" if p99 <= 20 and missed == 0 else "**no**"),
    ]
    return {"items": n, "setup_seconds": setup, "index_size": size, "lookups": len(times), "p50_ms": p50,
            "p99_ms": p99, "max_ms": max(times), "missed": missed,
            "select1_p99_ms": stack.percentile(floor, 99), "rows": rows}
