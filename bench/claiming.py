"""3. Claiming.

1,000,000 queued items (rows only: claiming needs no media), inserted with one INSERT … SELECT
generate_series, spread over three named queues and the general one, with priorities (0–600)
and a few urgent items, ranked as intake/routing.py ranks them; every reviewer works two of the
queues and the general one (queue.item_claim then reads the head of three queues, then locks). Then 16 reviewers, each its own process, claim and decide (not apparent CSAM)
through queue.item_claim and decisions.decision_record: the latency of each claim, and a check
that no item was ever held by two people at once.

Paced: each reviewer looks at an item for 1–2 s before deciding (a fast human takes 5 s or
more): claim latency under the load of 16 people, the figure held to the target (a reviewer's
first claim, on a new connection, is reported apart too). Flat out: no pause at all, so that the
16 processes saturate the machine: its capacity in claims and decisions per second. Flat out
four times, 20 s each, in turn: the previous audit design put back (every audit write takes one
head row FOR NO KEY UPDATE, reads the last hash and updates the head, held until COMMIT:
`serial_audit`), the current one (an INSERT; the chaining step links the events every
TSREVIEW_AUDIT_CHAIN_SECONDS in a process of its own, as Celery beat would), and both again.
"""

import hashlib
import random
import time
from multiprocessing import get_context

from . import stack

REVIEWERS = 16
RUN_SECONDS = 75  # the bound on each claiming run, whatever the scale
FLAT_SECONDS = 20  # each flat-out run: long enough that start-up and drift are a small part
THINK_SECONDS = (1.0, 2.0)

ITEMS_SQL = """
INSERT INTO reports_item (sha256, md5, sha1, pdq, pdq_quality, mime_type, size_bytes, width, height, frames,
                          original_blob, previews, state, priority, verdict, created_at, queued_at, urgent, queue_id, rank_at,
                          frame_times, frame_pdqs, unreviewable_reason)
SELECT encode(sha256(('bench-' || g)::bytea), 'hex'), md5(g::text), substr(md5('s' || g) || md5('t' || g), 1, 40),
       '', NULL, 'image/jpeg', 100000, 1024, 768, 1, '', '{}'::jsonb, 'queued', p, '',
       now() - interval '2 days', q, g %% 50000 = 0,
       CASE WHEN g %% 10 < 2 THEN %s WHEN g %% 10 = 2 THEN %s WHEN g %% 10 < 9 THEN %s ELSE NULL END,
       q - p * interval '60 s' - CASE WHEN g %% 50000 = 0 THEN interval '18250 days' ELSE interval '0' END,
       '[]'::jsonb, '[]'::jsonb, ''
FROM (SELECT g, ((g %% 7) * 100)::smallint AS p, now() - interval '2 days' + g * interval '100 ms' AS q
      FROM generate_series(1, %s) AS g) AS rows
"""
# Named queues as docs/priority.md's example: live uploads (20 % of items), video (10 %),
# datasets (60 %), the rest in the general queue. Every reviewer here works the live uploads
# and video queues (and the general one): a claim looks at the head of three queues.
QUEUES = ["live uploads", "video", "datasets"]


def items_insert(n: int) -> float:
    from django.db import connection

    from reports.models import ReviewQueue

    ids = [ReviewQueue.objects.create(name=name, position=i).pk for i, name in enumerate(QUEUES)]
    t = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(ITEMS_SQL, [*ids, n])
        cursor.execute("VACUUM (ANALYZE) reports_item")
    return time.perf_counter() - t


def reviewers_create(n: int, prefix: str = "reviewer") -> list[int]:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from reports.models import ReviewQueue, Role, WellnessPolicy

    group = Group.objects.get_or_create(name=Role.REVIEWER)[0]
    ids = []
    for i in range(n):
        user = get_user_model()(username=f"{prefix}-{i}", email=f"{prefix}-{i}@example.org")
        user.set_unusable_password()  # nobody signs in with a password here; hashing would cost seconds
        user.save()
        user.groups.add(group)
        user.review_queues.set(ReviewQueue.objects.filter(name__in=QUEUES[:2]))
        ids.append(user.pk)
    # The daily item cap (400) would stop a reviewer in a long run; the cap is not what is measured.
    WellnessPolicy.objects.update_or_create(pk=1, defaults={"daily_cap_items": 100_000})
    return ids


HEAD_SQL = """
CREATE TABLE IF NOT EXISTS bench_audit_head (id int PRIMARY KEY, last_id bigint NOT NULL, last_hash text NOT NULL);
INSERT INTO bench_audit_head VALUES (1, 0, repeat('0', 64)) ON CONFLICT DO NOTHING;
"""


def serial_audit(record):
    """The previous design, put back for comparison: one head row, locked by every audit write
    until its transaction commits (SELECT … FOR NO KEY UPDATE, INSERT, UPDATE)."""
    from django.db import connection

    def serial_record(**kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT last_hash FROM bench_audit_head WHERE id = 1 FOR NO KEY UPDATE")
            last_hash = cursor.fetchone()[0]
        written = record(**kwargs)
        events = written if isinstance(written, list) else [written]  # audit_record_many: several
        for event in events:
            last_hash = hashlib.sha256(f"{last_hash}|{event.pk}|{event.action}".encode()).hexdigest()
        if events:
            with connection.cursor() as cursor:
                cursor.execute("UPDATE bench_audit_head SET last_id = %s, last_hash = %s WHERE id = 1",
                               [events[-1].pk, last_hash])
        return written

    return serial_record


def _chainer(stop, interval: float, results) -> None:
    """The chaining step as beat runs it: every `interval` seconds, link what was committed."""
    from reports.audit import audit_chain

    runs, linked, busy = 0, 0, 0.0
    while not stop.is_set():
        t = time.perf_counter()
        linked += audit_chain()
        busy += time.perf_counter() - t
        runs += 1
        stop.wait(interval)
    results.put({"runs": runs, "linked": linked, "busy_s": busy})


def _reviewer(user_id: int, claims: int, think: tuple | None, deadline: float, barrier, results,
              serial: bool = False) -> None:
    from django.contrib.auth import get_user_model

    from reports.review import decisions, queue, reveal, wellness

    user = get_user_model().objects.get(pk=user_id)
    claim_ms, decide_ms, held, audit_ms = [], [], [], []
    if serial:  # every audit write in review takes the head row, as before
        for module in (queue, decisions, reveal, wellness):
            for name in ("audit_record", "audit_record_many"):
                if hasattr(module, name):
                    setattr(module, name, serial_audit(getattr(module, name)))
    # How much of a claim is audit_record (with serial: taking the head row lock, held by
    # whoever is writing an event until COMMIT, and appending the event).
    # Only the audit writes made inside item_claim count (queue.claim_close, run by a decision,
    # writes through the same names).
    claiming = [False]

    def timed(record):
        def timed_record(**kwargs):
            t = time.perf_counter()
            try:
                return record(**kwargs)
            finally:
                if claiming[0]:
                    audit_ms[-1] += (time.perf_counter() - t) * 1000
        return timed_record

    queue.audit_record, queue.audit_record_many = timed(queue.audit_record), timed(queue.audit_record_many)
    rng = random.Random(user_id)
    barrier.wait(60)
    if think:  # people do not all start in the same millisecond
        time.sleep(rng.uniform(0, think[1]))
    began = time.time()
    for _ in range(claims):
        if time.time() > deadline:
            break
        audit_ms.append(0.0)
        t, claiming[0] = time.perf_counter(), True
        claim = queue.item_claim(user=user)
        claim_ms.append((time.perf_counter() - t) * 1000)
        claiming[0] = False
        if claim is None:
            break
        held.append((claim.item_id, claim.stage, claim.pk))
        if think:
            time.sleep(rng.uniform(*think))
        t = time.perf_counter()
        decisions.decision_record(user=user, claim=claim, verdict="not_csam", reason="benign")
        decide_ms.append((time.perf_counter() - t) * 1000)
    results.put((claim_ms, decide_ms, held, audit_ms, (began, time.time())))


def claim_run(user_ids: list[int], claims_each: int, think: tuple | None, *, serial: bool = False,
              seconds: float = RUN_SECONDS) -> dict:
    """Each reviewer makes claims_each claims (or as many as fit in `seconds`). The rate is over
    the time the reviewers worked (first claim to last decision), not their start-up. A
    reviewer's first claim runs on a new connection (PostgreSQL's caches for the tables still
    cold): it is kept apart (first_ms) from the claims that follow (warm_ms)."""
    from django.conf import settings
    from django.db import connections

    connections.close_all()  # the children open their own connections
    ctx = get_context("fork")
    barrier, results = ctx.Barrier(len(user_ids)), ctx.Queue()
    deadline = time.time() + seconds
    procs = [ctx.Process(target=_reviewer, args=(uid, claims_each, think, deadline, barrier, results, serial))
             for uid in user_ids]
    stop, chained = ctx.Event(), ctx.Queue()
    chainer = ctx.Process(target=_chainer, args=(stop, settings.TSREVIEW_AUDIT_CHAIN_SECONDS, chained))
    t, jiffies, cpu0 = time.perf_counter(), stack.machine_jiffies(), stack.cpu_seconds()
    for proc in procs:
        proc.start()
    chainer.start()
    collected = [results.get(timeout=RUN_SECONDS + 120) for _ in procs]
    elapsed = time.perf_counter() - t
    busy = stack.busy_share(jiffies, stack.machine_jiffies())
    stop.set()
    chain = chained.get(timeout=120)
    for proc in [*procs, chainer]:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
    time.sleep(0.3)  # the backends of the closed connections exit and are reaped
    cpu = stack.cpu_used(cpu0, stack.cpu_seconds())
    claim_ms = [x for c, _, _, _, _ in collected for x in c]
    decide_ms = [x for _, d, _, _, _ in collected for x in d]
    held = [h for _, _, hs, _, _ in collected for h in hs]
    audit_ms = [x for _, _, _, a, _ in collected for x in a]
    worked = max(w[1] for *_, w in collected) - min(w[0] for *_, w in collected)
    # The slowest 1% of claims, and how much of each was audit_record.
    slow = sorted(zip(claim_ms, audit_ms, strict=True), reverse=True)[:max(1, len(claim_ms) // 100)]
    return {"claim_ms": claim_ms, "decide_ms": decide_ms, "held": held, "seconds": elapsed, "chain": chain,
            "worked_s": worked, "per_s": len(decide_ms) / max(1e-9, worked), "busy": busy,
            "cpu_ms_per_cycle": {role: round(v * 1000 / max(1, len(decide_ms)), 1) for role, v in cpu.items()},
            "first_ms": [c[0] for c, *_ in collected if c], "warm_ms": [x for c, *_ in collected for x in c[1:]],
            "audit_share_of_slowest": sum(a for _, a in slow) / max(1e-9, sum(c for c, _ in slow)),
            "audit_share": sum(audit_ms) / max(1e-9, sum(claim_ms))}


def double_claims(held) -> dict:
    """Two people never held one item at once: by what the reviewers got, and in the database.

    A claim's started_at is read before its SELECT … FOR UPDATE, so the QA claim that takes an
    item the moment a review decision commits may carry a start a few milliseconds before the
    review claim's end (ended_at is read inside the deciding transaction, before its COMMIT).
    Those handoffs are counted apart; any other overlap, or any (item, stage) claimed twice,
    is a double claim."""
    from django.db import connection

    seen = [(item, stage) for item, stage, _ in held]
    in_run = len(seen) - len(set(seen))
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT a.stage, b.stage, a.user_id <> b.user_id, extract(epoch FROM a.ended_at - b.started_at) * 1000
              FROM reports_claim a JOIN reports_claim b
                ON a.item_id = b.item_id AND a.id < b.id
               AND a.started_at < coalesce(b.ended_at, now()) AND b.started_at < coalesce(a.ended_at, now())""")
        overlaps = cursor.fetchall()
        cursor.execute("SELECT count(*) FROM (SELECT 1 FROM reports_claim GROUP BY item_id, stage HAVING count(*) > 1) t")
        repeated = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM reports_claim")
        claims = cursor.fetchone()[0]
    handoffs = [o for o in overlaps if (o[0], o[1]) == ("review", "qa") and o[3] is not None and o[3] < 1000]
    return {"repeated_in_run": in_run, "repeated_in_db": repeated, "overlapping_in_db": len(overlaps) - len(handoffs),
            "handoff_overlaps": len(handoffs), "handoff_max_ms": max((float(o[3]) for o in handoffs), default=0.0),
            "claims_in_db": claims}


def explain() -> str:
    """The plan of the candidate query, to show it uses the index at this size."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from reports.models import Claim
    from reports.review import queue

    user = get_user_model().objects.filter(username__startswith="reviewer-").first()
    sql, params = queue.candidate_statement(user, Claim.Stage.REVIEW, queue.reviewer_lanes(user), timezone.now())
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN ANALYZE " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def query_timing(rounds: int = 400) -> dict:
    """The claim's candidate statement alone, in one process, interleaved so that the machine's
    load weighs on each the same: the reviewer's queues (the heads of three queues and the lock,
    one statement) against one index scan over all queues, and a bare `SELECT 1` round trip (the
    floor)."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from reports.models import Claim
    from reports.review import queue

    user = get_user_model().objects.filter(username__startswith="reviewer-").first()
    lanes = queue.reviewer_lanes(user)
    times = {"queues": [], "all": [], "floor": []}
    for _ in range(rounds):
        for name, chosen in (("queues", lanes), ("all", None)):
            with transaction.atomic(), connection.cursor() as cursor:
                t = time.perf_counter()
                cursor.execute(*queue.candidate_statement(user, Claim.Stage.REVIEW, chosen, timezone.now()))
                cursor.fetchone()
                times[name].append((time.perf_counter() - t) * 1000)
        with connection.cursor() as cursor:
            t = time.perf_counter()
            cursor.execute("SELECT 1")
            cursor.fetchone()
            times["floor"].append((time.perf_counter() - t) * 1000)
    return {k: (stack.percentile(v, 50), stack.percentile(v, 99)) for k, v in times.items()}


def run(n_items: int | None = None) -> dict:
    n = n_items or stack.scaled(1_000_000, 1000)
    setup = items_insert(n)
    stack.say(f"{n} queued items inserted and analysed in {setup:.1f} s")
    user_ids = reviewers_create(REVIEWERS)
    stack.say("candidate query plan:\n  " + explain().replace("\n", "\n  "))
    qt = query_timing()
    stack.say(f"candidate statements alone, one process, interleaved: reviewer's three queues p50 {qt['queues'][0]:.2f} ms, "
              f"p99 {qt['queues'][1]:.2f} ms; one scan over all queues p50 {qt['all'][0]:.2f}, p99 {qt['all'][1]:.2f} ms; "
              f"SELECT 1 p50 {qt['floor'][0]:.2f}, p99 {qt['floor'][1]:.2f} ms")
    solo = claim_run(user_ids[:1], stack.scaled(200, 10), None)
    s50, s99 = stack.percentile(solo["warm_ms"], 50), stack.percentile(solo["warm_ms"], 99)
    stack.say(f"peer: one reviewer alone, flat out: {len(solo['claim_ms'])} claims: claim p50 {s50:.1f} ms, p99 {s99:.1f} ms "
              f"(the first, on a new connection: {solo['first_ms'][0]:.1f} ms)")
    paced = claim_run(user_ids, stack.scaled(25, 4), THINK_SECONDS)
    p50, p99 = stack.percentile(paced["warm_ms"], 50), stack.percentile(paced["warm_ms"], 99)
    all99, first = stack.percentile(paced["claim_ms"], 99), paced["first_ms"]
    stack.say(f"paced ({THINK_SECONDS[0]:g}–{THINK_SECONDS[1]:g} s per item), {REVIEWERS} reviewers: {len(paced['claim_ms'])} "
              f"claims in {paced['seconds']:.1f} s: claim p50 {p50:.1f} ms, p99 {p99:.1f} ms (max {max(paced['warm_ms']):.1f}) "
              f"after each reviewer's first; the {len(first)} first claims, each on a new connection: p50 "
              f"{stack.percentile(first, 50):.1f} ms, max {max(first):.1f} ms; all claims together p99 {all99:.1f} ms; "
              f"decide p50 {stack.percentile(paced['decide_ms'], 50):.1f} ms, p99 {stack.percentile(paced['decide_ms'], 99):.1f} ms; "
              f"audit_record is {paced['audit_share']:.0%} of claim time, {paced['audit_share_of_slowest']:.0%} of the "
              f"slowest 1%")
    with connection_cursor() as cursor:
        cursor.execute(HEAD_SQL)
    # Flat out, the two audit designs in turn, twice each, for FLAT_SECONDS each: the machine's
    # drift (autovacuum, the queue's head) weighs on both alike.
    runs = {"previous": [], "current": []}
    for design in ("previous", "current", "previous", "current"):
        run_ = claim_run(user_ids, 100_000, None, serial=design == "previous", seconds=stack.scaled(FLAT_SECONDS, 3))
        runs[design].append(run_)
        stack.say(f"flat out, {design} audit design{' (one head row per write)' if design == 'previous' else ''}: "
                  f"{len(run_['decide_ms'])} claim+decide in {run_['worked_s']:.1f} s = {run_['per_s']:.1f}/s; claim p50 "
                  f"{stack.percentile(run_['claim_ms'], 50):.1f} ms, p99 {stack.percentile(run_['claim_ms'], 99):.1f} ms; "
                  f"decide p50 {stack.percentile(run_['decide_ms'], 50):.1f} ms; audit_record is {run_['audit_share']:.0%} "
                  f"of claim time; the chainer ran {run_['chain']['runs']} times, linked {run_['chain']['linked']} events; "
                  f"machine {run_['busy']:.0%} busy; CPU ms per cycle by role {run_['cpu_ms_per_cycle']}")
    before, flat = (_merged(runs[d]) for d in ("previous", "current"))
    before_rate, rate = before["per_s"], flat["per_s"]
    f50, f99 = stack.percentile(flat["claim_ms"], 50), stack.percentile(flat["claim_ms"], 99)
    stack.say(f"flat out, both runs of each: current {rate:.1f}/s, previous {before_rate:.1f}/s → {rate / before_rate:.2f}×")
    lag = chain_lag()
    stack.say(f"chain: every event linked {lag['max_s']:.1f} s after it was written at most (p99 {lag['p99_s']:.1f} s); "
              f"verify_audit: {lag['verify']}")
    check = double_claims(solo["held"] + paced["held"] + before["held"] + flat["held"])
    stack.say(f"double claims: {check['repeated_in_run']} repeated in the runs, {check['repeated_in_db']} (item, stage) "
              f"repeated and {check['overlapping_in_db']} overlapping claims among {check['claims_in_db']} in the database; "
              f"{check['handoff_overlaps']} review→QA handoffs whose timestamps overlap by at most "
              f"{check['handoff_max_ms']:.1f} ms")
    doubles = check["repeated_in_run"] + check["repeated_in_db"] + check["overlapping_in_db"]
    none = doubles == 0
    rows = [
        (f"{n:,} queued in three named queues and the general one: the claim's candidate statements (one statement: "
         f"the heads of the reviewer's three queues, and the lock), one process: p50 {qt['queues'][0]:.2f} ms, p99 {qt['queues'][1]:.2f} ms "
         f"(one scan over all queues: p99 {qt['all'][1]:.2f} ms; SELECT 1: p99 {qt['floor'][1]:.2f} ms)",
         "p99 ≤ 20 ms", "yes" if qt["queues"][1] <= 20 else "**no**"),
        (f"{n:,} queued, {REVIEWERS} reviewers at 1–2 s per item, {len(paced['claim_ms'])} claims: p99 {all99:.1f} ms "
         f"(after each reviewer's first claim: p50 {p50:.1f}, p99 {p99:.1f} ms; the {len(first)} first, each on a new "
         f"connection: max {max(first):.1f} ms; one reviewer alone: p50 {s50:.1f}, p99 {s99:.1f} ms)",
         "p99 ≤ 20 ms", "yes" if all99 <= 20 else "**no**"),
        (f"same, flat out (capacity): {rate:.1f} claim+decide/s; claim p50 {f50:.1f} ms, p99 {f99:.1f} ms; "
         f"previous audit design in the same run: {before_rate:.1f}/s → {rate / before_rate:.1f}×",
         "≥ 2× the previous design", "yes" if rate >= 2 * before_rate else "**no**"),
        (f"audit_record's share of claim time, flat out: {flat['audit_share']:.0%} (previous design: "
         f"{before['audit_share']:.0%})", "≤ 20 %", "yes" if flat["audit_share"] <= 0.2 else "**no**"),
        (f"chain lag, flat out: max {lag['max_s']:.1f} s from write to link (window "
         f"{lag['window_s']:g} s); verify_audit {lag['verify']}", "≤ window", "yes" if lag["max_s"] <= lag["window_s"] else "**no**"),
        (f"double claims: {doubles} (of {check['claims_in_db']} claims; {check['handoff_overlaps']} review→QA "
         f"handoffs overlap by ≤ {check['handoff_max_ms']:.1f} ms of timestamp)", "0", "yes" if none else "**no**"),
    ]
    return {"items": n, "setup_seconds": setup, "candidate_statements": qt, "solo": _figures(solo), "paced": _figures(paced),
            "flat": {**_figures(flat), "per_s": rate, "runs_per_s": [r["per_s"] for r in runs["current"]]},
            "flat_previous_design": {**_figures(before), "per_s": before_rate,
                                     "runs_per_s": [r["per_s"] for r in runs["previous"]]}, "chain_lag": lag,
            **check, "rows": rows}


def connection_cursor():
    from django.db import connection

    return connection.cursor()


def chain_lag() -> dict:
    """After the runs: link the rest, then how long events waited to be linked, and a full verify."""
    from django.conf import settings

    from reports.audit import audit_chain, audit_verify

    audit_chain()
    with connection_cursor() as cursor:
        cursor.execute("""SELECT extract(epoch FROM max(l.linked_at - e.at)),
                                 extract(epoch FROM percentile_cont(0.99) WITHIN GROUP (ORDER BY l.linked_at - e.at))
                            FROM reports_auditevent e JOIN reports_auditlink l ON l.seq = e.id
                           WHERE e.actor_kind = 'user'""")
        worst, p99 = cursor.fetchone()
    checked, broken, why = audit_verify(chain=False)
    verdict = f"intact, {checked} events" if broken is None else f"BROKEN at {broken}: {why}"
    return {"max_s": float(worst or 0), "p99_s": float(p99 or 0), "window_s": settings.TSREVIEW_AUDIT_CHAIN_WINDOW_SECONDS,
            "verify": verdict}


def _merged(runs: list[dict]) -> dict:
    """Runs of one kind as one: their claims together, the rate over their working time."""
    merged = {key: [x for r in runs for x in r[key]] for key in ("claim_ms", "decide_ms", "held", "warm_ms", "first_ms")}
    worked = sum(r["worked_s"] for r in runs)
    weights = [len(r["claim_ms"]) for r in runs]
    return {**merged, "seconds": sum(r["seconds"] for r in runs), "worked_s": worked,
            "per_s": len(merged["decide_ms"]) / max(1e-9, worked), "chain": runs[-1]["chain"],
            **{key: sum(r[key] * w for r, w in zip(runs, weights, strict=True)) / max(1, sum(weights))
               for key in ("audit_share", "audit_share_of_slowest")}}


def _figures(run_: dict) -> dict:
    return {"claims": len(run_["claim_ms"]), "seconds": run_["seconds"],
            "claim_p50_ms": stack.percentile(run_["claim_ms"], 50), "claim_p99_ms": stack.percentile(run_["claim_ms"], 99),
            "decide_p50_ms": stack.percentile(run_["decide_ms"], 50), "decide_p99_ms": stack.percentile(run_["decide_ms"], 99),
            "audit_share": run_["audit_share"], "audit_share_of_slowest": run_["audit_share_of_slowest"]}
