"""Calibration of hash lists on a fixture of decisions whose answers are known: counts by list,
hash type and distance bucket; precision with its Wilson interval (computed here another way);
the suggested threshold; the page, its chart and its CSV/JSON exports."""

import csv
import io
import math

import pytest
from django.utils import timezone

from reports.leads import calibration
from reports.models import AuditEvent, Decision, FeedbackPolicy, Item, Match, Scanner, Submission

pytestmark = pytest.mark.django_db
Z = 1.959963984540054


def wilson_by_quadratic(k: int, n: int) -> tuple[float, float]:
    """The Wilson bounds are the p where (p̂ − p)² = z²·p(1 − p)/n: the roots of
    (n + z²)p² − (2k + z²)p + k²/n = 0."""
    a, b, c = n + Z * Z, -(2 * k + Z * Z), k * k / n
    root = math.sqrt(b * b - 4 * a * c)
    return (-b - root) / (2 * a), (-b + root) / (2 * a)


@pytest.fixture
def decided(reviewer):
    make_decisions(reviewer)


def make_decisions(reviewer):
    """NCMEC PDQ: 0-4 all 20 confirmed (entry e1); 4-8 18 confirmed, 1 benign, 1 adult (e2);
    8-12 2 confirmed, 6 not a match, 2 unsure (e3); one with no distance (e1); entry e4 with
    2 decisions. IWF SHA-256: 3 confirmed. A queued item and an escalation without any decision
    (an unreviewable video) do not count."""
    scanner = Scanner.objects.create(name="cal", token_hash="c" * 64, token_prefix="c")
    n = iter(range(1, 10_000))
    plan = ([("NCMEC", "e1", "pdq", 1.0 + i % 3, "confirmed", "") for i in range(20)]
            + [("NCMEC", "e2", "pdq", 5.0, "confirmed", "")] * 18
            + [("NCMEC", "e2", "pdq", 6.0, "not_csam", "benign"), ("NCMEC", "e2", "pdq", 7.0, "not_csam", "adult")]
            + [("NCMEC", "e3", "pdq", 9.0, "confirmed", "")] * 2 + [("NCMEC", "e3", "pdq", 11.0, "not_csam", "not_a_match")] * 6
            + [("NCMEC", "e3", "pdq", 10.0, "unsure", "")] * 2
            + [("NCMEC", "e1", "pdq", None, "confirmed", "")]
            + [("NCMEC", "e4", "pdq", 2.0, "confirmed", ""), ("NCMEC", "e4", "pdq", 13.0, "not_csam", "benign")]
            + [("IWF", "w1", "sha256", 0.0, "confirmed", "")] * 3
            + [("NCMEC", "e1", "pdq", 1.0, "queued", ""), ("NCMEC", "e1", "pdq", 1.0, "unreviewable", "")])
    for list_name, entry, hash_type, distance, outcome, reason in plan:
        i = next(n)
        state = {"queued": Item.State.QUEUED, "unsure": Item.State.ESCALATED, "unreviewable": Item.State.ESCALATED}.get(
            outcome, Item.State.DECIDED)
        item = Item.objects.create(sha256=f"{i:064x}", md5=f"{i:032x}", sha1=f"{i:040x}", mime_type="image/jpeg",
                                   size_bytes=10, width=1, height=1, original_blob=f"blob-{i}", state=state,
                                   verdict=outcome if state == Item.State.DECIDED else "", verdict_reason=reason)
        submission = Submission.objects.create(scanner=scanner, external_id=f"cal/{i}", item=item,
                                               observed_at=timezone.now(), source_type="web_crawl")
        Match.objects.create(submission=submission, hash_type=hash_type, hash_value="ab" * 32, list_name=list_name,
                             list_entry_id=entry, distance=distance, threshold=31)
        if outcome not in ("queued", "unreviewable"):
            verdict = "escalated" if outcome == "unsure" else outcome
            Decision.objects.create(item=item, reviewer=reviewer, reviewer_name="rita", verdict=verdict, reason=reason,
                                    note="unsure" if verdict == "escalated" else "", decided_at=timezone.now())


def group(data, list_name, hash_type):
    [lst] = [g for g in data["lists"] if g["list"] == list_name]
    [hashes] = [h for h in lst["hash_types"] if h["hash_type"] == hash_type]
    return lst, hashes


def test_counts_precision_and_wilson_bounds_by_distance_bucket(decided):
    data = calibration.calibration()
    ncmec, pdq = group(data, "NCMEC", "pdq")
    got = [(b["start"], b["end"], b["confirmed"], b["not_csam"], b["unsure"]) for b in pdq["buckets"]]
    assert got == [(0, 4, 21, 0, 0), (4, 8, 18, 2, 0), (8, 12, 2, 6, 2), (12, 16, 0, 1, 0), (None, None, 1, 0, 0)]
    middle = pdq["buckets"][1]
    assert middle["not_csam_by_reason"] == {"adult": 1, "benign": 1, "not_a_match": 0, "unreadable": 0}
    assert middle["precision"] == pytest.approx(0.9)
    for bucket, (k, n) in zip(pdq["buckets"][:4], [(21, 21), (18, 20), (2, 8), (0, 1)], strict=True):
        low, high = wilson_by_quadratic(k, n)
        assert (bucket["precision_low"], bucket["precision_high"]) == (pytest.approx(low, abs=1e-9), pytest.approx(high, abs=1e-9))
    assert middle["precision_low"] == pytest.approx(0.699, abs=0.001)  # the textbook figure for 18 of 20
    assert pdq["suggested_threshold"] == 4  # 4-8 is the first bucket under 0.95
    _, sha = group(data, "IWF", "sha256")
    assert [(b["start"], b["confirmed"]) for b in sha["buckets"]] == [(0, 3)] and sha["suggested_threshold"] is None


def test_entries_with_enough_decisions_get_their_own_row(decided):
    ncmec, _ = group(calibration.calibration(), "NCMEC", "pdq")
    rows = {e["entry"]: (e["confirmed"], e["not_csam"], e["unsure"]) for e in ncmec["entries"]}
    assert rows == {"e1": (21, 0, 0), "e2": (18, 2, 0), "e3": (2, 6, 2)}  # e4 has 2 decisions, under 5


def test_the_admins_target_moves_the_suggested_threshold(decided):
    FeedbackPolicy.objects.update_or_create(pk=1, defaults={"target_precision": 0.85})
    _, pdq = group(calibration.calibration(), "NCMEC", "pdq")
    assert pdq["suggested_threshold"] == 8


def test_the_lead_page_shows_the_table_and_an_svg_chart(decided, lena, rita, django_assert_max_num_queries):
    with django_assert_max_num_queries(15):
        response = lena.get("/lead/calibration/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "suggested threshold: distance under 4" in page and "NCMEC list" in page and "IWF list" in page
    assert page.count("<svg class=\"chart\"") == 2 and page.count("<circle") == 5  # 4 PDQ buckets + 1 SHA-256
    assert "18 of 20 confirmed" in page and "0.699–0.972" in page
    assert rita.get("/lead/calibration/").status_code == 404


def test_exports_carry_the_same_figures_and_are_audited(decided, lena, rita):
    response = lena.get("/lead/calibration.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    [middle] = [r for r in rows if r["list"] == "NCMEC" and r["distance_from"] == "4"]
    assert (middle["confirmed"], middle["not_csam"], middle["not_csam_benign"], middle["precision"]) == ("18", "2", "1", "0.9")
    low, high = wilson_by_quadratic(18, 20)
    assert float(middle["precision_low_95"]) == pytest.approx(low, abs=1e-4) and middle["suggested_threshold"] == "4"
    assert {r["entry"] for r in rows if r["entry"]} == {"e1", "e2", "e3"}
    data = lena.get("/lead/calibration.json").json()
    assert data["target_precision"] == 0.95 and group(data, "NCMEC", "pdq")[1]["suggested_threshold"] == 4
    assert list(AuditEvent.objects.filter(action="calibration.exported").values_list("actor_name", "data")) == [
        ("lena", {"format": "csv"}), ("lena", {"format": "json"})]
    assert lena.get("/lead/calibration.xml").status_code == 404
    assert rita.get("/lead/calibration.csv").status_code == 404
    assert AuditEvent.objects.filter(action="calibration.exported").count() == 2  # neither refusal was audited


def test_with_no_decisions_the_page_says_so(lena):
    response = lena.get("/lead/calibration/")
    assert response.status_code == 200 and 'id="no-calibration"' in response.content.decode()
