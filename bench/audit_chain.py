"""6. Audit: verifying a chain of 1,000,000 events with reports.audit.audit_verify.

The chain is made here: events shaped like the real ones (claims, decisions, previews,
submissions), linked with reports.audit.link_mac (HMAC-SHA256 under the run's audit key) and
loaded with COPY, events and links. The floor is the same links computed in a plain loop over
the events in memory (no database), in this run.
"""

import json
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from . import stack

COLUMNS = ("id", "at", "actor_kind", "actor_id", "actor_name", "action", "subject_kind", "subject_id", "item_id",
           "data")


def _event(i: int, start: datetime) -> SimpleNamespace:
    at = start + timedelta(microseconds=i * 1_013)
    kind = i % 5
    item = i // 5 + 1
    if kind == 0:
        action, subject, data = "claim.started", ("claim", str(item)), {"stage": "review", "lease_until": (at + timedelta(minutes=10)).isoformat()}
    elif kind == 1:
        action, subject, data = "media.preview", ("item", str(item)), {"kind": "inspect-3"}
    elif kind == 2:
        action, subject, data = "decision.recorded", ("decision", str(item)), {
            "verdict": "not_csam", "classification": "", "reason": "benign", "annotations": [],
            "viewed_unblurred": False, "stage": "review", "item_state": "decided"}
    elif kind == 3:
        action, subject, data = "claim.decided", ("claim", str(item)), {"stage": "review", "item_state": "decided"}
    else:
        action, subject, data = "submission.created", ("submission", f"{item:032x}"), {
            "external_id": f"crawl/{item}", "duplicate": False}
    actor = ("scanner", "1", "crawler") if kind == 4 else ("user", str(i % 16 + 2), f"reviewer-{i % 16}")
    return SimpleNamespace(pk=i, at=at, actor_kind=actor[0], actor_id=actor[1], actor_name=actor[2], action=action,
                           subject_kind=subject[0], subject_id=subject[1], item_id=item, data=data, subject_row=None)


def chain_load(n: int) -> dict:
    from django.db import connection
    from django.utils import timezone

    from reports.audit import GENESIS, audit_keys, link_mac

    key_id, keys = audit_keys()
    key = keys[key_id]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    t = time.perf_counter()
    events = [_event(i, start) for i in range(1, n + 1)]
    made = time.perf_counter() - t
    t = time.perf_counter()
    prev = GENESIS
    for event in events:
        prev = event.mac = link_mac(key, prev, event)
    digests = time.perf_counter() - t
    t = time.perf_counter()
    connection.ensure_connection()
    now = timezone.now()
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY reports_auditevent ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for e in events:
                copy.write_row((e.pk, e.at, e.actor_kind, e.actor_id, e.actor_name, e.action, e.subject_kind,
                                e.subject_id, e.item_id, json.dumps(e.data)))
        with cursor.cursor.copy("COPY reports_auditlink (seq, key_id, mac, linked_at) FROM STDIN") as copy:
            for e in events:
                copy.write_row((e.pk, key_id, e.mac, now))
        cursor.execute("VACUUM (ANALYZE) reports_auditevent")
        cursor.execute("VACUUM (ANALYZE) reports_auditlink")
    loaded = time.perf_counter() - t
    return {"make_s": made, "digest_floor_s": digests, "load_s": loaded}


def run() -> dict:
    from reports.audit import audit_verify

    n = stack.scaled(1_000_000, 10_000)
    setup = chain_load(n)
    stack.say(f"{n:,} events: made in {setup['make_s']:.1f} s, linked (link_mac, HMAC, in memory) in "
              f"{setup['digest_floor_s']:.1f} s, loaded with COPY in {setup['load_s']:.1f} s")
    t = time.perf_counter()
    checked, broken, why = audit_verify(chain=False)
    seconds = time.perf_counter() - t
    if checked != n or broken is not None:
        raise RuntimeError(f"audit_verify found {checked} intact of {n}; broken at {broken}: {why}")
    ratio = seconds / setup["digest_floor_s"]
    stack.say(f"audit_verify: {checked:,} events intact in {seconds:.1f} s ({checked / seconds:,.0f}/s); "
              f"{ratio:.1f}× the in-memory HMAC loop")
    target = 20 * n / 1_000_000
    rows = [(f"verify {n:,} events: {seconds:.1f} s ({ratio:.1f}× the in-memory HMACs, "
             f"{setup['digest_floor_s']:.1f} s)", f"≤ {target:g} s", "yes" if seconds <= target else "**no**")]
    return {"events": n, **setup, "verify_s": seconds, "ratio": ratio, "rows": rows}
