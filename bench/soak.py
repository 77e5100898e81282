"""9. Soak: ten minutes of everything at once on the production shape.

gunicorn (4 workers) + a Celery worker (2 processes) + PostgreSQL + Redis (broker and cache) +
an S3 server (moto, its own process) holding the media + the fake CyberTipline. Four scanners
push (one ~40 KB picture a second each); sixteen reviewers, each a signed-in session, claim, look
at the page and the preview, and decide at a person's pace (1–2 s), revealing and confirming one
item in five; a lead builds report drafts and approves them every minute, and the worker sends
them. Figures: errors, lost submissions (answered 201 but not in the database), items left
unreviewable, reports sent, and the resident memory of the web and worker processes sampled every
10 s (the second half of the run against the first: flat means within 10 %).
"""

import html
import json
import random
import re
import threading
import time
import uuid
from pathlib import Path

from . import stack
from .review_page import CSRF, PREVIEW, sessions_make

SCANNERS, REVIEWERS = 4, 16
PUSH_INTERVAL = 1.0  # seconds between one scanner's pushes
THINK = (1.0, 2.0)
LEAD_INTERVAL = 60.0
CONFIRM_SHARE = 0.2
LINK = re.compile(rb'href="/reports/(\d+)/"')


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _metadata(external_id: str, i: int) -> dict:
    return {"external_id": external_id, "observed_at": "2026-11-20T12:00:00Z",
            "matches": [{"hash_type": "pdq", "hash_value": "f8" * 32, "list": "NCMEC", "list_entry_id": str(i),
                         "distance": 12, "threshold": 31, "label": "A1"}],
            "provenance": {"source_type": "web_crawl", "platform": "Example Photos",
                           "location_url": f"https://host.example/img/{i}.jpg", "page_url": "https://host.example/gallery/7",
                           "collected_at": "2026-09-14T03:12:00Z", "publicly_available": True}}


class Soak:
    def __init__(self, port: int, seconds: float):
        self.port, self.deadline = port, time.time() + seconds
        self.lock = threading.Lock()
        self.accepted: list[str] = []
        self.errors: list[str] = []
        self.counts = {"pushes": 0, "decisions": 0, "confirmed": 0, "approved": 0, "idle_claims": 0}

    def error(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counts[name] += n

    # --- scanners ------------------------------------------------------------------------------

    def scanner(self, number: int, token: str) -> None:
        from devtools.synthetic import synthetic_image

        i = 0
        while time.time() < self.deadline:
            started = time.monotonic()
            seed = 100_000 * (number + 1) + i
            external_id = f"soak/{number}/{i}"
            body, content_type = stack.multipart([
                ("metadata", "", json.dumps(_metadata(external_id, seed)).encode(), "application/json"),
                ("file", f"{i}.jpg", synthetic_image(seed, size=(480, 360)), "image/jpeg")])
            try:
                status, _, answer = stack.request(self.port, "POST", "/api/v1/submissions", body,
                                                  {"Authorization": f"Bearer {token}", "Content-Type": content_type})
            except OSError as exc:
                self.error(f"push: {type(exc).__name__}")
            else:
                if status == 201:
                    with self.lock:
                        self.accepted.append(external_id)
                else:
                    self.error(f"push answered {status}: {answer[:200]!r}")
            self.count("pushes")
            i += 1
            time.sleep(max(0.0, PUSH_INTERVAL - (time.monotonic() - started)))

    # --- reviewers -----------------------------------------------------------------------------

    def reviewer(self, session_key: str, seed: int) -> None:
        rng = random.Random(seed)
        browser = stack.Browser(self.port, {"sessionid": session_key})
        while time.time() < self.deadline:
            try:
                self._review_one(browser, rng)
            except OSError as exc:
                self.error(f"reviewer: {type(exc).__name__}")
                time.sleep(1)

    def _review_one(self, browser, rng) -> None:
        status, _, home = browser.get("/")
        if status != 200:
            return self.error(f"home answered {status}")
        status, headers, _ = browser.post("/claim/", {"csrfmiddlewaretoken": CSRF.search(home).group(1).decode()})
        location = headers.get("location", "")
        if status != 302:
            return self.error(f"claim answered {status}")
        if not location.startswith("/review/"):
            self.count("idle_claims")  # nothing waiting: a person would look again shortly
            time.sleep(rng.uniform(2, 4))
            return None
        status, _, page = browser.get(location)
        preview = PREVIEW.search(page)
        if status != 200 or preview is None:
            return self.error(f"review page answered {status}")
        status, _, image = browser.get(html.unescape(preview.group(1).decode()))
        if status != 200 or not image.startswith(b"\xff\xd8"):
            return self.error(f"preview answered {status}")
        token = CSRF.search(page).group(1).decode()
        item_id = location.strip("/").split("/")[1]
        fields = {"csrfmiddlewaretoken": token, "verdict": "not_csam", "reason": "benign"}
        if rng.random() < CONFIRM_SHARE:
            status, headers, original = browser.post(f"/media/{item_id}/original/", {"csrfmiddlewaretoken": token, "mode": "hold"})
            if status != 200 or "x-view-id" not in headers:
                return self.error(f"reveal answered {status}")
            status, _, _ = stack.request(self.port, "POST", f"/views/{headers['x-view-id']}/",
                                         json.dumps({"seconds": 1.0, "painted": True}).encode(),
                                         browser._headers({"Content-Type": "application/json", "X-CSRFToken": token}))
            if status != 200:
                return self.error(f"view report answered {status}")
            fields = {"csrfmiddlewaretoken": token, "verdict": "confirmed", "classification": "A1"}
        time.sleep(rng.uniform(*THINK))
        status, headers, answer = browser.post(location + "decide/", fields)
        if status != 302:
            return self.error(f"decide answered {status}: {answer[-300:]!r}")
        self.count("decisions")
        if fields["verdict"] == "confirmed":
            self.count("confirmed")
        return None

    # --- the lead ------------------------------------------------------------------------------

    def lead(self, session_key: str) -> None:
        browser = stack.Browser(self.port, {"sessionid": session_key})
        while time.time() < self.deadline:
            time.sleep(min(LEAD_INTERVAL, max(0.0, self.deadline - time.time())))
            try:
                self._lead_round(browser)
            except OSError as exc:
                self.error(f"lead: {type(exc).__name__}")

    def _lead_round(self, browser) -> None:
        status, _, page = browser.get("/reports/")
        if status != 200:
            return self.error(f"report list answered {status}")
        status, _, _ = browser.post("/reports/build/", {"csrfmiddlewaretoken": CSRF.search(page).group(1).decode()})
        if status != 302:
            return self.error(f"build answered {status}")
        from reports.models import Report

        for report_id in Report.objects.filter(state=Report.State.DRAFT).values_list("pk", flat=True):
            status, _, detail = browser.get(f"/reports/{report_id}/")
            if status != 200:
                self.error(f"report page answered {status}")
                continue
            status, _, _ = browser.post(f"/reports/{report_id}/approve/",
                                        {"csrfmiddlewaretoken": CSRF.search(detail).group(1).decode()})
            if status == 302 and Report.objects.get(pk=report_id).state == Report.State.APPROVED:
                self.count("approved")
            else:
                self.error(f"approve answered {status}")
        return None


def _s3_start() -> dict:
    import boto3

    port = stack.free_port()
    stack.Service("moto", [str(stack.VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], stack.OUT / "moto.log")
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                          aws_secret_access_key="bench-secret")
    deadline = time.monotonic() + 60
    while True:
        try:
            client.create_bucket(Bucket="tsreview-soak")
            break
        except Exception:  # noqa: BLE001 - not listening yet
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    return {"TSREVIEW_MEDIA_STORAGE": "s3", "TSREVIEW_S3_BUCKET": "tsreview-soak", "TSREVIEW_S3_ENDPOINT_URL": endpoint,
            "TSREVIEW_S3_REGION": "us-east-1", "TSREVIEW_S3_ACCESS_KEY_ID": "bench",
            "TSREVIEW_S3_SECRET_ACCESS_KEY": "bench-secret", "TSREVIEW_S3_ADDRESSING_STYLE": "path"}


def run() -> dict:
    import os

    from django.db.models import Count

    from devtools.fake_cybertip import FakeCyberTipline
    from reports.models import Item, Report, Role, Submission

    seconds = stack.scaled(600, 60)
    fake = FakeCyberTipline(slow_seconds=0.2)
    os.environ.update(_s3_start())
    os.environ.update({"TSREVIEW_CYBERTIP_BASE_URL": fake.start(), "TSREVIEW_CYBERTIP_USERNAME": fake.username,
                       "TSREVIEW_CYBERTIP_PASSWORD": fake.password,
                       "TSREVIEW_SCANNER_RATE": "100000/min"})
    from django.contrib.auth.models import Group

    from .claiming import reviewers_create
    from .ingest import scanner_token

    tokens = [scanner_token(f"soak-scanner-{n}") for n in range(SCANNERS)]
    reviewers = reviewers_create(REVIEWERS, prefix="soak-reviewer")
    lead = reviewers_create(1, prefix="soak-lead")[0]
    Group.objects.get_or_create(name=Role.LEAD)[0].user_set.add(lead)
    keys = sessions_make([*reviewers, lead])
    celery = stack.celery_start()
    web, port, _ = stack.gunicorn_start(workers=4)
    soak = Soak(port, seconds)
    samples: list[tuple[float, float, float]] = []
    threads = [threading.Thread(target=soak.scanner, args=(n, token)) for n, token in enumerate(tokens)]
    threads += [threading.Thread(target=soak.reviewer, args=(key, n)) for n, key in enumerate(keys[:-1])]
    threads.append(threading.Thread(target=soak.lead, args=(keys[-1],)))
    started = time.time()
    for thread in threads:
        thread.start()
    while time.time() < soak.deadline:
        samples.append((time.time() - started, _rss_mb(web.children()), _rss_mb(celery.children())))
        time.sleep(10)
    for thread in threads:
        thread.join(120)
    # Let the worker finish what was queued (previews, sends), then count.
    drain = time.monotonic() + 120
    while time.monotonic() < drain and (Item.objects.filter(state=Item.State.NEW).exists()
                                        or Report.objects.filter(state=Report.State.APPROVED).exists()):
        time.sleep(1)
    accepted = set(soak.accepted)
    stored = set(Submission.objects.filter(external_id__in=accepted).values_list("external_id", flat=True))
    states = dict(Item.objects.values_list("state").annotate(n=Count("id")).order_by())
    reports = dict(Report.objects.values_list("state").annotate(n=Count("id")).order_by())
    web.stop()
    celery.stop()
    fake.stop()
    half = len(samples) // 2
    first, second = samples[1:half] or samples[:1], samples[half:] or samples[-1:]

    def mean(rows, col):
        return sum(r[col] for r in rows) / len(rows)

    web_first, web_second = mean(first, 1), mean(second, 1)
    worker_first, worker_second = mean(first, 2), mean(second, 2)
    web_drift, worker_drift = web_second / web_first - 1, worker_second / worker_first - 1
    lost = len(accepted - stored)
    stuck = states.get(Item.State.NEW, 0)
    figures = {"seconds": seconds, "counts": soak.counts, "errors": len(soak.errors), "error_sample": soak.errors[:10],
               "accepted": len(accepted), "lost": lost, "item_states": states, "report_states": reports,
               "web_rss_mb": [web_first, web_second], "worker_rss_mb": [worker_first, worker_second],
               "web_drift": web_drift, "worker_drift": worker_drift, "samples": samples}
    stack.say(f"{seconds} s: {soak.counts['pushes']} pushes ({len(accepted)} accepted, {lost} lost), "
              f"{soak.counts['decisions']} decisions ({soak.counts['confirmed']} confirmed), {soak.counts['approved']} "
              f"reports approved; reports {reports}; items {states}; {len(soak.errors)} errors {soak.errors[:3]}")
    stack.say(f"RSS web {web_first:.0f} → {web_second:.0f} MB ({web_drift:+.1%}), worker {worker_first:.0f} → "
              f"{worker_second:.0f} MB ({worker_drift:+.1%})")
    ok = not soak.errors and lost == 0 and stuck == 0
    flat = abs(web_drift) <= 0.10 and abs(worker_drift) <= 0.10
    rows = [
        (f"{seconds} s, {SCANNERS} scanners, {REVIEWERS} reviewers, a lead, media in S3: {len(accepted)} pushes, "
         f"{soak.counts['decisions']} decisions, {reports.get(Report.State.FINISHED, 0)} reports sent; "
         f"{len(soak.errors)} errors, {lost} lost, {stuck} left new", "0 errors, 0 lost", "yes" if ok else "**no**"),
        (f"RSS second half vs first: web {web_first:.0f}→{web_second:.0f} MB ({web_drift:+.1%}), worker "
         f"{worker_first:.0f}→{worker_second:.0f} MB ({worker_drift:+.1%})", "within 10 %", "yes" if flat else "**no**"),
    ]
    return {**figures, "rows": rows, "id": uuid.uuid4().hex}
