"""Steps a browser test shares."""

from playwright.sync_api import expect


def start_review(page) -> int:
    page.goto("/")
    page.click("#start")
    page.wait_for_url("**/review/*/")
    expect(page.locator("#media")).to_have_js_property("complete", True)
    return int(page.url.rstrip("/").split("/")[-1])
