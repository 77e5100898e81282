"""The embedded default as a newcomer gets it from `make run`: SQLite, tasks in-process, the
threaded development server, demo data. A reviewer's page makes concurrent requests of its own
(the re-blurred preview, the reveal report, the heartbeat, each writing audit rows); none may
fail with "database is locked"."""

import os
import re
import sqlite3
import subprocess
import sys

import pytest
from django.conf import settings

from .support.browser import start_review
from .support.fault_services import Process, free_port, listening, wait_for

pytestmark = pytest.mark.browser
ROOT = settings.BASE_DIR


@pytest.fixture
def embedded(tmp_path):
    """`make run`'s setup in a folder of its own: migrate, seed (a few items), serve."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "TSREVIEW_ENV")}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}", TSREVIEW_MEDIA_ROOT=str(tmp_path / "media"),
               TSREVIEW_VAR_DIR=str(tmp_path / "var"),  # its keys and audit checkpoints too, not the checkout's var/
               DJANGO_SETTINGS_MODULE="tsreview.settings")
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, cwd=ROOT, check=True)
    seeded = subprocess.run([*manage, "seed_demo", "--items", "4", "--calibration", "0"], env=env, cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    password = re.search(r"^\s+reviewer\s+reviewer\s+(\S+)$", seeded, re.M).group(1)
    port = free_port()
    server = Process([*manage, "runserver", f"127.0.0.1:{port}", "--noreload", "--insecure"], env=env, log=tmp_path / "server.log")
    assert wait_for(lambda: listening(port), 30), (tmp_path / "server.log").read_text()
    yield f"http://127.0.0.1:{port}", password, tmp_path / "demo.sqlite3"
    server.stop()


def test_reveal_and_release_cycles_on_the_embedded_default_fail_no_request(browser, embedded):
    base, password, database = embedded
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=base)
    page = context.new_page()
    failed = []
    page.on("requestfailed", lambda request: failed.append(f"{request.method} {request.url}: {request.failure}"))
    page.on("response", lambda response: failed.append(f"{response.status} {response.url}")
            if response.status >= 400 else None)
    try:
        page.goto("/login/")
        page.fill("#id_username", "reviewer")
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_url(base + "/")
        start_review(page)
        for hold_ms in (400, 150, 600, 50, 350, 800, 250, 500, 100, 450, 700, 300):
            page.keyboard.down(" ")
            if hold_ms >= 300:  # a look: wait for the original, then hold; shorter ones may end before it arrives
                page.locator("#original").wait_for(state="visible", timeout=5000)
            page.wait_for_timeout(hold_ms)
            page.keyboard.up(" ")
            # Other writers at the same moment as the release's report, as a second tab or the
            # old page's preview refetch made them: each preview fetch writes an audit row too.
            page.evaluate("() => { const src = document.getElementById('media').src;"
                          " for (let i = 0; i < 3; i++) fetch(src, {cache: 'no-store'}); }")
            page.wait_for_timeout(150)
        page.wait_for_function("() => sessionStorage.getItem('tsreview.pendingViews') === '{}'", timeout=10000)
    finally:
        context.close()
    assert failed == []
    with sqlite3.connect(database) as db:
        reveals, reported = db.execute("SELECT count(*), sum(reported) FROM reports_viewevent").fetchone()
    assert reveals >= 8 and reported == reveals  # every reveal's report arrived, none was lost
