"""1. Ingest (and 7. memory of a web worker during it).

2,000 synthetic 1024×768 JPEGs of ~100 KB pushed by 4 concurrent clients to gunicorn (4 workers,
as the README runs it) with a Celery worker making the previews: submissions per second until
every item is queued. The floor is the same bytes checked, hashed, PDQ'd, encrypted, written
and inserted by a plain loop in one process, measured in the same run, before and after the
stack (averaged). The CPU the whole machine spent during the stack's run is given per item and
by role (gunicorn, Celery, PostgreSQL, …).
"""

import json
import threading
import time
from multiprocessing import get_context

from . import stack

CLIENTS = 4
SIZE = (1024, 768)
QUALITY = 88  # ~100 KB at 1024×768 with the synthetic noise


def _image(seed: int) -> bytes:
    from devtools.synthetic import synthetic_image

    return synthetic_image(seed, size=SIZE, quality=QUALITY)


def images(n: int) -> list[bytes]:
    with get_context("fork").Pool(2) as pool:
        return pool.map(_image, range(10_000, 10_000 + n), chunksize=50)


def metadata(i: int) -> dict:
    return {
        "external_id": f"bench/ingest/{i}",
        "observed_at": "2026-11-20T12:00:00Z",
        "matches": [{"hash_type": "pdq", "hash_value": "f8" * 32, "list": "NCMEC", "list_entry_id": str(i),
                     "distance": 12, "threshold": 31, "label": "A1"}],
        "provenance": {"source_type": "web_crawl", "platform": "Example Photos",
                       "location_url": f"https://host.example/img/{i}.jpg", "page_url": "https://host.example/gallery/7",
                       "collected_at": "2026-09-14T03:12:00Z", "publicly_available": True},
    }


def scanner_token(name: str) -> str:
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("create_scanner", name, stdout=out)
    return out.getvalue().strip()


def floor_items(data: list[bytes], name: str = "floor") -> list[int]:
    """What the API does per push (validate, inspect, store, insert, audit), with no HTTP,
    gunicorn or Celery, for every image; the preview tasks it would queue are not queued.
    Returns the new items' ids."""
    import reports.intake.submission as intake_module
    from reports.intake.media import image_inspect
    from reports.intake.provenance import MetadataInput
    from reports.intake.submission import submission_create
    from reports.models import Scanner

    scanner_token(name)
    scanner = Scanner.objects.get(name=name)
    ids = []
    enqueue, intake_module.enqueue = intake_module.enqueue, lambda *args: None
    try:
        for i, blob in enumerate(data):
            validator = MetadataInput(data=metadata(i))
            validator.is_valid(raise_exception=True)
            facts = image_inspect(blob, claimed_type="image/jpeg")
            ids.append(submission_create(scanner=scanner, metadata=validator.validated_data, data=blob, facts=facts).submission.item_id)
    finally:
        intake_module.enqueue = enqueue
    return ids


def floor(data: list[bytes], previews: int) -> dict:
    """The plain loop of floor_items over every image; then, separately, the previews of the
    first `previews` items (a rate per item, so a sample is enough)."""
    from django.db import connection

    from reports.intake.previews import item_previews_make
    from reports.models import Item
    from tsreview.celery import app as celery_app

    celery_app.conf.task_always_eager = False
    t0 = time.perf_counter()
    ids = floor_items(data)
    intake_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    for item_id in ids[:previews]:
        item_previews_make(item_id=item_id)
    previews_seconds = time.perf_counter() - t1
    assert Item.objects.filter(state=Item.State.QUEUED).count() == previews
    connection.close()
    intake_per_s, previews_per_s = len(data) / intake_seconds, previews / previews_seconds
    return {"intake_per_s": intake_per_s, "previews_per_s": previews_per_s,
            "with_previews_per_s": 1 / (1 / intake_per_s + 1 / previews_per_s)}


def push_all(port: int, token: str, data: list[bytes]) -> tuple[list, list]:
    bodies = [stack.multipart([("metadata", "", json.dumps(metadata(i)).encode(), "application/json"),
                               ("file", f"{i}.jpg", blob, "image/jpeg")]) for i, blob in enumerate(data)]
    statuses, latencies, lock = [], [], threading.Lock()
    counter = iter(range(len(bodies)))

    def client():
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            body, content_type = bodies[i]
            t = time.perf_counter()
            status, _, _ = stack.request(port, "POST", "/api/v1/submissions", body,
                                         {"Authorization": f"Bearer {token}", "Content-Type": content_type})
            with lock:
                latencies.append((time.perf_counter() - t) * 1000)
                statuses.append(status)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    return statuses, latencies


def queued_count() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM reports_item WHERE state = 'queued'")
        return cursor.fetchone()[0]


def end_to_end(data: list[bytes]) -> dict:
    token = scanner_token("bench-scanner")
    celery = stack.celery_start()
    web, port, access = stack.gunicorn_start(workers=4)
    cpu0, jiffies = stack.cpu_seconds(), stack.machine_jiffies()
    t0 = time.perf_counter()
    statuses, latencies = push_all(port, token, data)
    pushed = time.perf_counter() - t0
    deadline = time.monotonic() + 600
    while queued_count() < len(data) and time.monotonic() < deadline:
        time.sleep(0.05)
    total = time.perf_counter() - t0
    queued = queued_count()
    cpu, busy = stack.cpu_used(cpu0, stack.cpu_seconds()), stack.busy_share(jiffies, stack.machine_jiffies())
    web_peak = max(stack.peak_rss_mb(pid) for pid in web.children())
    celery_peak = max(stack.peak_rss_mb(pid) for pid in celery.children())
    server = stack.server_times(access, r"/api/v1/submissions", method="POST")
    web.stop()
    celery.stop()
    return {"statuses": {s: statuses.count(s) for s in set(statuses)}, "queued": queued,
            "per_s": queued / total, "accepted_per_s": len(statuses) / pushed, "seconds": total,
            "client_p50_ms": stack.percentile(latencies, 50), "client_p99_ms": stack.percentile(latencies, 99),
            "server_p50_ms": stack.percentile(server, 50), "server_p99_ms": stack.percentile(server, 99),
            "web_worker_peak_rss_mb": web_peak, "celery_worker_peak_rss_mb": celery_peak,
            "busy": busy, "cpu_ms_per_item": {role: round(seconds * 1000 / max(queued, 1), 1) for role, seconds in cpu.items()}}


def run() -> dict:
    n = stack.scaled(2000, 40)
    t = time.perf_counter()
    data = images(n)
    stack.say(f"{n} synthetic JPEGs {SIZE[0]}×{SIZE[1]}, mean {sum(map(len, data)) / n / 1024:.0f} KB, "
              f"made in {time.perf_counter() - t:.1f} s")
    # The floor is measured before and after the stack, and the two averaged: the machine's
    # drift over the run weighs on both sides of the ratio alike.
    sample = min(n, stack.scaled(500, 20))
    before = floor(data, previews=sample)
    stack.say(f"floor before (one process): intake {before['intake_per_s']:.1f}/s; previews {before['previews_per_s']:.1f}/s")
    _fresh()
    run_ = end_to_end(data)
    _fresh()
    after = floor(data, previews=sample)
    stack.say(f"floor after (one process): intake {after['intake_per_s']:.1f}/s; previews {after['previews_per_s']:.1f}/s")
    base = {key: (before[key] + after[key]) / 2 for key in ("intake_per_s", "previews_per_s")}
    base["with_previews_per_s"] = 1 / (1 / base["intake_per_s"] + 1 / base["previews_per_s"])
    base["before"], base["after"] = before, after
    stack.say(f"floor, the two averaged: intake {base['intake_per_s']:.1f}/s; previews {base['previews_per_s']:.1f}/s; "
              f"both {base['with_previews_per_s']:.1f}/s")
    stack.say(f"gunicorn + Celery, {CLIENTS} clients: {run_['queued']}/{n} queued in {run_['seconds']:.1f} s = "
              f"{run_['per_s']:.1f} submissions/s end-to-end (answers {run_['statuses']}; all answered at "
              f"{run_['accepted_per_s']:.1f}/s); server time p50 {run_['server_p50_ms']:.0f} ms, p99 "
              f"{run_['server_p99_ms']:.0f} ms")
    ratio = run_["per_s"] / base["intake_per_s"]
    ratio_previews = run_["per_s"] / base["with_previews_per_s"]
    stack.say(f"ratio to the floor: {ratio:.2f} (intake-only floor), {ratio_previews:.2f} (floor with previews)")
    stack.say(f"machine {run_['busy']:.0%} busy during the stack's run; CPU per queued item, ms, by role: "
              f"{run_['cpu_ms_per_item']}")
    stack.say(f"peak RSS: web worker {run_['web_worker_peak_rss_mb']:.0f} MB, Celery pool worker "
              f"{run_['celery_worker_peak_rss_mb']:.0f} MB")
    ok = run_["queued"] == n and all(s == 201 for s in run_["statuses"])
    rows = [
        (f"{n} pushes, 4 clients: {run_['per_s']:.1f} submissions/s end-to-end", "≥ 100/s", _met(ok and run_["per_s"] >= 100)),
        (f"ratio to the one-process floor ({base['intake_per_s']:.1f}/s intake only): {ratio:.2f}; "
         f"to the floor with previews ({base['with_previews_per_s']:.1f}/s): {ratio_previews:.2f}", "≥ 0.7", _met(ratio >= 0.7)),
        (f"peak RSS of a web worker during ingest: {run_['web_worker_peak_rss_mb']:.0f} MB", "(recorded)", "—"),
    ]
    return {"n": n, "floor": base, "stack": run_, "ratio": ratio, "ratio_with_previews": ratio_previews, "rows": rows}


def _fresh() -> None:
    """An empty database, media folder and broker, as before the first push."""
    stack.database_reset()
    stack.media_clear()
    stack.redis_flush()


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"
