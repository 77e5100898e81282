"""Steps a browser test shares."""

from playwright.sync_api import expect


def start_review(page) -> int:
    page.goto("/")
    page.click("#start")
    page.wait_for_url("**/review/*/")
    expect(page.locator("#media")).to_have_js_property("complete", True)
    return int(page.url.rstrip("/").split("/")[-1])


def axe_serious(page) -> list:
    page.add_script_tag(url="/static/js/vendor/axe.min.js")  # vendored, served from 'self' (the CSP allows it)
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
            for v in results["violations"] if v["impact"] in ("serious", "critical")]
