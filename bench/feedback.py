"""9. Closing the loop (issue 16): signed webhook delivery, the cost the new hooks add to a
decision, and the calibration page's figures over many decided matches.

- Webhooks: N events written to the outbox (events.submission_events) for N submissions, then
  delivered by feedback.webhooks.events_deliver, one signed POST at a time, to a receiver on
  loopback that answers 204 (a threaded http.server in this process): events per second.
- Decisions: items queued (rows only) with a match to a list entry each; one reviewer claims
  and decides (not apparent CSAM) through queue.item_claim and decisions.decision_record, first
  with the hooks in place (outbox rows, quarantine check, list feedback note), then with them
  replaced by no-ops: the median time of decision_record each way.
- Calibration: M decided matches (rows made by COPY-free bulk inserts), leads.calibration.calibration()
  computed three times: the median.
"""

import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import stack


class _Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # a kept-alive connection, as a real endpoint would offer

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def _items(n: int, prefix: str, state: str, verdict: str = ""):
    from django.utils import timezone

    from reports.models import Item

    now = timezone.now()
    rows = [Item(sha256=f"{prefix}{i:060x}"[:64].ljust(64, "0"), md5=f"{i:032x}", sha1=f"{i:040x}", mime_type="image/jpeg",
                 size_bytes=1000, width=10, height=10, original_blob=f"{prefix}-{i}", state=state, verdict=verdict,
                 verdict_reason="benign" if verdict == "not_csam" else "",
                 queued_at=now, decided_at=now if state == "decided" else None) for i in range(n)]
    return Item.objects.bulk_create(rows, batch_size=2000)


def _submissions(items, scanner, prefix: str, matches: callable):
    from django.utils import timezone

    from reports.models import Match, Submission

    now = timezone.now()
    subs = Submission.objects.bulk_create([Submission(scanner=scanner, external_id=f"{prefix}/{i}", item=item, observed_at=now,
                                                      source_type="web_crawl") for i, item in enumerate(items)],
                                          batch_size=2000)
    Match.objects.bulk_create([Match(submission=s, **matches(i)) for i, s in enumerate(subs)], batch_size=2000)
    return subs


def webhooks(n: int) -> dict:
    from django.db import transaction

    from reports import events
    from reports.feedback import webhooks as hooks
    from reports.models import Scanner, ScannerEvent, Submission

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    scanner = Scanner.objects.create(name="bench-hooks", token_hash="b" * 64, token_prefix="b",
                                     callback_url=f"http://127.0.0.1:{server.server_address[1]}/hooks")
    hooks.scanner_webhook_configure(actor=None, scanner=scanner, rotate=True)
    _submissions(_items(n, "a", "queued"), scanner, "hook",
                 lambda i: {"hash_type": "pdq", "hash_value": "f" * 64, "list_name": "NCMEC", "list_entry_id": str(i)})
    subs = list(Submission.objects.filter(scanner=scanner).select_related("item", "scanner"))
    t = time.perf_counter()
    with transaction.atomic():
        events.submission_events(submissions=subs, type="submission.queued")
    write = time.perf_counter() - t
    t = time.perf_counter()
    delivered = 0
    while True:
        counts = hooks.events_deliver(scanner_id=scanner.pk, limit=1000)
        delivered += counts["delivered"]
        if not counts["delivered"]:
            break
    send = time.perf_counter() - t
    server.shutdown()
    assert delivered == n == ScannerEvent.objects.filter(delivered_at__isnull=False).count()
    result = {"events": n, "outbox_write_s": round(write, 3), "deliver_s": round(send, 2),
              "delivered_per_s": round(n / send, 1)}
    stack.say(f"webhooks: {n} events written to the outbox in {write:.2f} s; delivered (signed POST, 204) in "
              f"{send:.1f} s = {n / send:.0f}/s, one worker")
    return result


def decisions(n: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.test import override_settings

    from reports.models import Scanner
    from reports.review import decisions as review_decisions
    from reports.review import queue

    scanner = Scanner.objects.create(name="bench-decide", token_hash="d" * 64, token_prefix="d")
    _submissions(_items(2 * n, "d", "queued"), scanner, "dec",
                 lambda i: {"hash_type": "pdq", "hash_value": "f" * 64, "list_name": "NCMEC", "list_entry_id": f"e{i % 50}",
                            "distance": i % 30})
    user = get_user_model().objects.create_user("bench-reviewer")

    def run(count):
        times = []
        with override_settings(TSREVIEW_QA_SAMPLE_PERCENT=0):
            for _ in range(count):
                claim = queue.item_claim(user=user)
                t = time.perf_counter()
                review_decisions.decision_record(user=user, claim=claim, verdict="not_csam", reason="benign")
                times.append(time.perf_counter() - t)
        return times

    saved = review_decisions.verdict_events, review_decisions.entries_review
    hooked, bare = [], []
    for _ in range(4):  # alternating blocks, so that a change in the machine's load falls on both
        hooked += run(n // 4)
        review_decisions.verdict_events = lambda **kwargs: None  # noqa: ARG005
        review_decisions.entries_review = lambda **kwargs: []  # noqa: ARG005
        try:
            bare += run(n // 4)
        finally:
            review_decisions.verdict_events, review_decisions.entries_review = saved
    with_hooks, without = statistics.median(hooked) * 1000, statistics.median(bare) * 1000
    stack.say(f"decisions: decision_record median {with_hooks:.1f} ms with the hooks, {without:.1f} ms without "
              f"({n} each, not apparent CSAM, 50 list entries)")
    return {"decisions": n, "median_ms_with_hooks": round(with_hooks, 2), "median_ms_without": round(without, 2)}


def calibration(m: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from reports.leads import calibration as cal
    from reports.models import Decision, Match, Scanner

    scanner = Scanner.objects.create(name="bench-cal", token_hash="c" * 64, token_prefix="c")
    t = time.perf_counter()
    half = m // 2
    confirmed, benign = _items(half, "c", "decided", "confirmed"), _items(m - half, "n", "decided", "not_csam")
    items = confirmed + benign
    _submissions(items, scanner, "cal", lambda i: {"hash_type": "pdq", "hash_value": "f" * 64, "list_name": f"L{i % 4}",
                                                  "list_entry_id": f"e{i % 2000}", "distance": i % 32})
    user = get_user_model().objects.create_user("bench-cal-reviewer")
    now = timezone.now()
    Decision.objects.bulk_create([Decision(item=item, reviewer=user, reviewer_name="r", verdict=item.verdict,
                                           reason="benign" if item.verdict == "not_csam" else "", decided_at=now)
                                  for item in items], batch_size=2000)
    load = time.perf_counter() - t
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) reports_item, reports_match, reports_submission, reports_decision")
    times = []
    for _ in range(3):
        t = time.perf_counter()
        data = cal.calibration()
        times.append(time.perf_counter() - t)
    counted = sum(b["decided"] for g in data["lists"] for h in g["hash_types"] for b in h["buckets"])
    assert counted == Match.objects.filter(submission__item__state="decided").count() >= m
    median = statistics.median(times)
    stack.say(f"calibration: {m} decided matches (4 lists, 2,000 entries) loaded in {load:.0f} s; "
              f"calibration() median {median:.2f} s over 3 runs")
    return {"matches": m, "median_s": round(median, 3)}


def run() -> dict:
    return {"webhooks": webhooks(stack.scaled(2000, 50)), "decisions": decisions(stack.scaled(200, 20)),
            "calibration": calibration(stack.scaled(100_000, 1000))}
