"""Profiles behind docs/benchmarks.md: where the time of one operation goes, in one process,
with cProfile and the queries it sends. Not part of `make bench`; run it on its own:

    .venv/bin/python bench/profiles.py [push|review_page|claim|audit_verify|report] …

It uses the benchmarks' own database (tsreview_bench), Redis db and media folder, and drops
them at the end.
"""

import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from bench import stack


def profiled(label: str, fn, repeat: int, top: int = 14) -> None:
    from django.db import connection

    fn()  # warm: imports, schema, first queries
    queries = []  # counted by a wrapper: the test client's request_started resets Django's query log

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        fn()
    profile = cProfile.Profile()
    t = time.perf_counter()
    profile.enable()
    for _ in range(repeat):
        fn()
    profile.disable()
    each = (time.perf_counter() - t) / repeat * 1000
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats(os.environ.get("PROFILE_SORT", "tottime")).print_stats(int(os.environ.get("PROFILE_TOP", top)))
    stack.say(f"\n### {label}: {each:.1f} ms each under cProfile, {len(queries)} queries")
    if os.environ.get("PROFILE_SQL"):  # the statements of one run, to see which ones could go
        stack.say("\n".join(f"  {sql[:300]}" for sql in queries))
    stack.say("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])


def push() -> None:
    import json

    from django.test import Client

    from bench.ingest import _image, metadata, scanner_token
    from tsreview.celery import app as celery_app

    celery_app.conf.task_always_eager = False  # the request queues the preview task in Redis, as in production
    token = scanner_token("profile")
    client = Client(HTTP_HOST="127.0.0.1")
    images = [_image(40_000 + i) for i in range(40)]
    counter = iter(range(len(images)))

    def one():
        i = next(counter)
        response = client.post("/api/v1/submissions", {
            "metadata": json.dumps(metadata(i)),
            "file": _upload(images[i])}, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 201, response.content

    profiled("POST /api/v1/submissions (in-process; the preview task queued, not run)", one, 30)
    celery_app.conf.task_always_eager = True


def _upload(data):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("x.jpg", data, content_type="image/jpeg")


def previews() -> None:
    from bench.ingest import _image
    from reports.intake.media import previews_make

    data = _image(50_000)
    profiled("media.previews_make of a 1024×768 JPEG", lambda: previews_make(data), 30)


def previews_task() -> None:
    """The whole preview task of a pushed JPEG: the image work above, storing, clustering,
    routing, quarantine, the scanner's event and the audit."""
    from bench.ingest import _image, floor_items
    from reports.intake.previews import item_previews_make

    ids = iter(floor_items([_image(60_000 + i) for i in range(140)]))
    profiled("intake.previews.item_previews_make of a pushed 1024×768 JPEG",
             lambda: item_previews_make(item_id=next(ids)), 100)


def review_page() -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from bench.review_page import items_make, sessions_make
    from reports.review import queue

    items_make(50)
    from bench.claiming import reviewers_create

    uid = reviewers_create(1)[0]
    key = sessions_make([uid])[0]
    claim = queue.item_claim(user=get_user_model().objects.get(pk=uid))
    client = Client(HTTP_HOST="127.0.0.1")
    client.cookies["sessionid"] = key
    page = f"/review/{claim.item_id}/"
    assert client.get(page).status_code == 200
    profiled(f"GET {page} (review page)", lambda: client.get(page), 50)
    preview = f"/media/{claim.item_id}/preview/inspect-3/"
    profiled(f"GET {preview}", lambda: client.get(preview), 50)


def claim() -> None:
    from django.contrib.auth import get_user_model

    from bench.claiming import items_insert, reviewers_create
    from reports.review import decisions, queue

    items_insert(100_000)
    user = get_user_model().objects.get(pk=reviewers_create(1)[0])
    held = {}

    def claim_one():
        held["claim"] = queue.item_claim(user=user)
        decisions.decision_record(user=user, claim=held["claim"], verdict="not_csam", reason="benign")

    profiled("queue.item_claim + decision_record", claim_one, 100)


def audit_verify() -> None:
    from bench.audit_chain import chain_load
    from reports.audit import audit_verify as verify

    chain_load(100_000)
    profiled("audit.audit_verify of 100,000 events", verify, 1, top=16)


def report() -> None:
    from bench.report_xml import sightings_make
    from reports.cybertip import xml
    from reports.models import Report
    from reports.reporting import checklist, drafting

    sightings_make(500)
    report = Report.objects.get(pk=drafting.report_draft_build(actor=None)[0].pk)

    def build():
        checklist.report_preview(report)
        for f in report.files.select_related("submission", "item"):
            xml.document_check(xml.file_details_document(f))

    profiled("report document + 500 fileDetails, built and validated", build, 1, top=16)


PROFILES = {"push": push, "previews": previews, "previews_task": previews_task, "review_page": review_page, "claim": claim,
            "audit_verify": audit_verify, "report": report}


def main() -> int:
    chosen = sys.argv[1:] or list(PROFILES)
    work = stack.workdir()
    stack.configure_environment(work)
    stack.django_setup()
    from tsreview.celery import app as celery_app

    celery_app.conf.task_always_eager = True  # previews made in this process, no worker needed
    try:
        stack.database_create()
        for name in chosen:
            stack.database_reset()
            PROFILES[name]()
    finally:
        stack.database_drop()
        stack.redis_flush()
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
