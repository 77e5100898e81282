"""Screenshots of the demo for docs/: `make run` in one shell, then
`.venv/bin/python scripts/screenshot.py` in another. Synthetic demo data only."""

import os
import sys
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tsreview.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

BASE = os.environ.get("TSREVIEW_URL", "http://127.0.0.1:8000")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def main(out_dir: Path):
    password = "screenshot-only-" + os.urandom(6).hex()
    user = get_user_model().objects.get(username="reviewer")
    user.set_password(password)
    user.save()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(BASE + "/login/")
        page.fill("#id_username", "reviewer")
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.screenshot(path=str(out_dir / "home.png"))
        if page.locator("#start").count():
            page.click("#start")
        else:
            page.click("#resume")
        page.wait_for_selector("#media")
        page.keyboard.press("1")
        page.screenshot(path=str(out_dir / "review.png"))
        browser.close()


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs")
    target.mkdir(exist_ok=True)
    main(target)
