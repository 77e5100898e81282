"""5. Reports: building and validating the XML of a report with 500 files.

Uses what reports/cybertip/xml.py and reports/reporting/ provide: 500 confirmed sightings
from one web page are drafted into one report (drafting.report_draft_build); then, timed,
the report document built and validated (checklist.report_preview), the 500 fileDetails
documents built and validated (xml.document_check(xml.file_details_document(f))), and the
whole approval (lifecycle.report_approve: checklist, every document built and validated and
stored, audited). The peer, in the same run: lxml validating the same 501 documents, already
built, against the same schema.
"""

import time
import uuid

from . import stack


def sightings_make(n: int) -> None:
    """n confirmed items (rows only: reports need no media), each with one sighting whose
    provenance is complete, and a standing decision by a reviewer who revealed the file."""
    from django.utils import timezone

    from reports.intake.provenance import MetadataInput, to_json
    from reports.models import Claim, Decision, Item, Match, Scanner, Submission

    from .claiming import reviewers_create
    from .ingest import metadata, scanner_token

    scanner_token("bench-reports")
    scanner = Scanner.objects.get(name="bench-reports")
    reviewer = reviewers_create(1, prefix="reports-reviewer")[0]
    now = timezone.now()
    items = Item.objects.bulk_create([
        Item(sha256=uuid.uuid4().hex * 2, md5=uuid.uuid4().hex, sha1=(uuid.uuid4().hex * 2)[:40], pdq="f8" * 32,
             mime_type="image/jpeg", size_bytes=100_000, width=1024, height=768, state=Item.State.DECIDED,
             verdict=Item.Verdict.CONFIRMED, queued_at=now, decided_at=now) for _ in range(n)])
    subs, decisions = [], []
    for i, item in enumerate(items):
        validator = MetadataInput(data=metadata(i))
        validator.is_valid(raise_exception=True)
        data = validator.validated_data
        subs.append(Submission(scanner=scanner, external_id=f"bench/report/{i}", item=item, observed_at=data["observed_at"],
                               source_type=data["provenance"]["source_type"], provenance=to_json(data["provenance"])))
        decisions.append(Decision(item=item, reviewer_id=reviewer, reviewer_name="reports-reviewer-0", stage=Claim.Stage.REVIEW,
                                  verdict=Decision.Verdict.CONFIRMED, classification="A1", annotations=["generativeAi"],
                                  viewed_unblurred=True, started_at=now, decided_at=now))
    Submission.objects.bulk_create(subs)
    Decision.objects.bulk_create(decisions)
    Match.objects.bulk_create([
        Match(submission=s, hash_type="pdq", hash_value="f8" * 32, list_name="NCMEC", list_entry_id=str(i), distance=12,
              threshold=31, label="A1") for i, s in enumerate(subs)])


def run() -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, override_settings

    from reports.cybertip import xml
    from reports.models import Report
    from reports.reporting import checklist, drafting, lifecycle, selectors

    n = stack.scaled(500, 25)
    sightings_make(n)
    t = time.perf_counter()
    drafts = drafting.report_draft_build(actor=None)
    stack.say(f"{n} confirmed sightings drafted into {len(drafts)} report(s) in {time.perf_counter() - t:.1f} s")
    report = Report.objects.get(pk=drafts[0].pk)
    assert report.files.count() == n, report.files.count()
    xml.schema()  # parsed once per process, as in a worker that has validated before

    t = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        body, errors = checklist.report_preview(report)
        files = list(selectors.report_files(report))
        details = [xml.document_check(xml.file_details_document(f)) for f in files]
    build_validate = time.perf_counter() - t
    if errors:
        raise RuntimeError(f"the report does not validate: {errors[:3]}")
    stack.say(f"report document and {len(details)} fileDetails built and validated in {build_validate * 1000:.0f} ms "
              f"({len(queries.captured_queries)} queries)")

    docs = [xml.etree.fromstring(body)] + [xml.etree.fromstring(d) for d in details]
    schema = xml.schema()
    t = time.perf_counter()
    valid = all(schema.validate(doc) for doc in docs)
    peer = time.perf_counter() - t
    assert valid
    stack.say(f"peer: lxml validating the same {len(docs)} built documents: {peer * 1000:.0f} ms; "
              f"ratio {build_validate / peer:.1f}×")

    lead = get_user_model().objects.create_user("bench-lead", "lead@example.org")
    with override_settings(TSREVIEW_CYBERTIP_BASE_URL="http://127.0.0.1:9/ispws"):  # checked, never called
        t = time.perf_counter()
        with CaptureQueriesContext(connection) as approve_queries:
            lifecycle.report_approve(actor=lead, report=report)
        approve = time.perf_counter() - t
    report.refresh_from_db()
    stack.say(f"report_approve ({n} files: checklist, build, validate, store, audit): {approve * 1000:.0f} ms "
              f"({len(approve_queries.captured_queries)} queries); state {report.state}")
    rows = [
        (f"{n} files: report + fileDetails built and validated in {build_validate * 1000:.0f} ms "
         f"({len(queries.captured_queries)} queries; lxml validation alone {peer * 1000:.0f} ms); whole approval "
         f"{approve * 1000:.0f} ms ({len(approve_queries.captured_queries)} queries)", "≤ 1 s (build and validate)",
         "yes" if build_validate <= 1 else "**no**"),
    ]
    return {"files": n, "build_validate_s": build_validate, "queries": len(queries.captured_queries),
            "validate_only_s": peer, "approve_s": approve, "approve_queries": len(approve_queries.captured_queries),
            "rows": rows}
