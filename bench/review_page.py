"""4. Review page.

16 reviewers, each a signed-in browser session (password and TOTP verified, as in
production), work through the queue on gunicorn: claim, load the review page, load the blurred
preview it shows, look for 1–2 s, decide (not apparent CSAM), which claims the next item. The
figure is the server time of the page and of the preview (gunicorn's own per-request time,
which leaves out waiting in the listen queue), p50 and p95. A second, flat-out pass without the
pause shows what the same requests cost when 16 clients saturate the machine.

The items are copies of one item pushed through intake: each has its own row, submission and
match, and they share the one set of encrypted previews (the bytes served are the same size).
"""

import html
import random
import re
import threading
import time
import uuid

from . import stack

REVIEWERS = 16
THINK_SECONDS = (1.0, 2.0)
RUN_SECONDS = 75
CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')
PREVIEW = re.compile(rb'<img id="media"[^>]* src="([^"]+)"')


def items_make(n: int) -> None:
    """One real item through intake (previews made here), then n copies of it waiting first."""
    from django.utils import timezone

    from reports.intake.media import image_inspect
    from reports.intake.previews import item_previews_make
    from reports.intake.provenance import MetadataInput
    from reports.intake.submission import submission_create
    from reports.models import Item, Match, Scanner, Submission
    from tsreview.celery import app as celery_app

    from .claiming import items_insert
    from .ingest import _image, metadata, scanner_token

    items_insert(stack.scaled(100_000, 1000))  # a queue behind the ones reviewed
    scanner_token("bench-review")
    scanner = Scanner.objects.get(name="bench-review")
    data = _image(30_000)
    validator = MetadataInput(data=metadata(0))
    validator.is_valid(raise_exception=True)
    celery_app.conf.task_always_eager = False
    import reports.intake.submission as intake_module

    enqueue, intake_module.enqueue = intake_module.enqueue, lambda *args: None
    try:
        first = submission_create(scanner=scanner, metadata=validator.validated_data, data=data,
                                  facts=image_inspect(data, claimed_type="image/jpeg")).submission
    finally:
        intake_module.enqueue = enqueue
    from reports.intake.routing import rank_time

    item = item_previews_make(item_id=first.item_id)
    now = timezone.now()
    fields = {f.attname: getattr(item, f.attname) for f in Item._meta.concrete_fields if f.attname not in ("id", "sha256")}
    fields.update(priority=10, queued_at=now, rank_at=rank_time(now, 10, False))
    copies = Item.objects.bulk_create([Item(sha256=uuid.uuid4().hex + uuid.uuid4().hex, **fields) for _ in range(n)])
    subs = Submission.objects.bulk_create([
        Submission(scanner=scanner, external_id=f"bench/review/{c.pk}", item=c, observed_at=first.observed_at,
                   source_type=first.source_type, provenance=first.provenance) for c in copies])
    match = first.matches.first()
    Match.objects.bulk_create([
        Match(submission=s, hash_type=match.hash_type, hash_value=match.hash_value, list_name=match.list_name,
              list_entry_id=match.list_entry_id, distance=match.distance, threshold=match.threshold, label=match.label)
        for s in subs])


def sessions_make(user_ids: list[int]) -> list[str]:
    """Signed in with password and a verified TOTP device, as django-otp's login leaves it."""
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.sessions.backends.db import SessionStore
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    keys = []
    for user in get_user_model().objects.filter(pk__in=user_ids).order_by("pk"):
        device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.create()
        keys.append(session.session_key)
    return keys


def reviewer(port: int, session_key: str, cycles: int, think, deadline: float, seed: int, out: dict) -> None:
    rng = random.Random(seed)
    browser = stack.Browser(port, {"sessionid": session_key})
    status, _, body = browser.get("/")
    if status != 200:
        out["errors"].append(f"home answered {status}")
        return
    if think:
        time.sleep(rng.uniform(0, think[1]))
    status, headers, _ = browser.post("/claim/", {"csrfmiddlewaretoken": CSRF.search(body).group(1).decode()})
    location = headers.get("location", "")
    for _ in range(cycles):
        if status != 302 or not location.startswith("/review/") or time.time() > deadline:
            if not location.startswith("/review/") and status == 302:
                out["errors"].append(f"nothing to review ({location})")
            elif status != 302:
                out["errors"].append(f"decide answered {status}")
            return
        t = time.perf_counter()
        status, _, page = browser.get(location)
        out["page_ms"].append((time.perf_counter() - t) * 1000)
        preview = PREVIEW.search(page)
        if status != 200 or preview is None:
            out["errors"].append(f"review page answered {status}")
            return
        t = time.perf_counter()
        status, _, image = browser.get(html.unescape(preview.group(1).decode()))
        out["preview_ms"].append((time.perf_counter() - t) * 1000)
        if status != 200 or not image.startswith(b"\xff\xd8"):
            out["errors"].append(f"preview answered {status}")
        if think:
            time.sleep(rng.uniform(*think))
        t = time.perf_counter()
        status, headers, _ = browser.post(location + "decide/", {
            "csrfmiddlewaretoken": CSRF.search(page).group(1).decode(), "verdict": "not_csam", "reason": "benign"})
        out["decide_ms"].append((time.perf_counter() - t) * 1000)
        location = headers.get("location", "")


def review_run(port: int, access, keys: list[str], cycles: int, think) -> dict:
    start_line = len(access.read_text().splitlines()) if access.exists() else 0
    out = {"page_ms": [], "preview_ms": [], "decide_ms": [], "errors": []}
    deadline = time.time() + RUN_SECONDS
    threads = [threading.Thread(target=reviewer, args=(port, key, cycles, think, deadline, i, out))
               for i, key in enumerate(keys)]
    t = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(RUN_SECONDS + 60)
    seconds = time.perf_counter() - t
    time.sleep(0.5)  # gunicorn writes its access log after the response
    server = {
        "page": stack.server_times(access, r"/review/\d+/", since_line=start_line),
        "preview": stack.server_times(access, r"/media/\d+/preview/[a-z0-9-]+/", since_line=start_line),
        "decide": stack.server_times(access, r"/review/\d+/decide/", method="POST", since_line=start_line),
    }
    figures = {"seconds": seconds, "cycles": len(out["decide_ms"]), "errors": out["errors"][:5],
               "error_count": len(out["errors"])}
    for name, times in server.items():
        figures[f"{name}_server_p50_ms"] = stack.percentile(times, 50)
        figures[f"{name}_server_p95_ms"] = stack.percentile(times, 95)
        figures[f"{name}_n"] = len(times)
        client = out[f"{name}_ms"]
        figures[f"{name}_client_p50_ms"] = stack.percentile(client, 50)
        figures[f"{name}_client_p95_ms"] = stack.percentile(client, 95)
    return figures


def _line(label: str, f: dict) -> str:
    return (f"{label}: {f['cycles']} items in {f['seconds']:.1f} s; server p50/p95: page {f['page_server_p50_ms']:.1f}/"
            f"{f['page_server_p95_ms']:.1f} ms, preview {f['preview_server_p50_ms']:.1f}/{f['preview_server_p95_ms']:.1f} ms, "
            f"decide+next claim {f['decide_server_p50_ms']:.1f}/{f['decide_server_p95_ms']:.1f} ms; as the client saw it: "
            f"page {f['page_client_p50_ms']:.1f}/{f['page_client_p95_ms']:.1f} ms, preview {f['preview_client_p50_ms']:.1f}/"
            f"{f['preview_client_p95_ms']:.1f} ms; errors {f['error_count']}")


def run() -> dict:
    from .claiming import reviewers_create

    paced_cycles, flat_cycles = stack.scaled(15, 3), stack.scaled(15, 3)
    items_make(REVIEWERS * (paced_cycles + flat_cycles) + 100)
    keys = sessions_make(reviewers_create(REVIEWERS))
    from django.db import connections

    connections.close_all()
    web, port, access = stack.gunicorn_start(workers=4)
    try:
        paced = review_run(port, access, keys, paced_cycles, THINK_SECONDS)
        stack.say(_line(f"paced ({THINK_SECONDS[0]:g}–{THINK_SECONDS[1]:g} s per item), {REVIEWERS} reviewers", paced))
        flat = review_run(port, access, keys, flat_cycles, None)
        stack.say(_line(f"flat out, {REVIEWERS} reviewers", flat))
    finally:
        web.stop()
    worst = max(paced["page_server_p95_ms"], paced["preview_server_p95_ms"])
    ok = worst <= 50 and paced["error_count"] == 0
    rows = [
        (f"{REVIEWERS} reviewers at 1–2 s per item: review page p50 {paced['page_server_p50_ms']:.1f} ms, p95 "
         f"{paced['page_server_p95_ms']:.1f} ms; preview p50 {paced['preview_server_p50_ms']:.1f} ms, p95 "
         f"{paced['preview_server_p95_ms']:.1f} ms (server time)", "p95 ≤ 50 ms", "yes" if ok else "**no**"),
        (f"same, flat out: page p95 {flat['page_server_p95_ms']:.1f} ms, preview p95 {flat['preview_server_p95_ms']:.1f} ms, "
         f"decide+claim p95 {flat['decide_server_p95_ms']:.1f} ms; {flat['cycles'] / flat['seconds']:.1f} items/s",
         "(recorded)", "—"),
    ]
    return {"paced": paced, "flat": flat, "rows": rows}
