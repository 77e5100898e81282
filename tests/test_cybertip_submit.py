"""Sending approved reports to the fake CyberTipline (devtools/fake_cybertip.py): a full
submission, a crash after /submit, a 4100 at /fileinfo, a timeout at /finish. Each ends with
exactly one finished report or a clean retract, and every call is on record."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from reports import tasks
from reports.cybertip import submit
from reports.intake import previews
from reports.models import ApiCall, AuditEvent, Hold, Report, Submission
from reports.reporting import drafting, lifecycle
from reports.review import decisions, queue

from .factories import look, make_confirmed, make_metadata, push

pytestmark = pytest.mark.django_db


def steps(report) -> list[str]:
    return list(ApiCall.objects.filter(report=report).values_list("step", flat=True))


class WorkerCrash(BaseException):
    """The worker process dying mid-run (not an Exception: nothing catches it)."""


def test_a_full_submission_finishes_one_report_with_every_call_on_record(
        lena, reviewer, lead, cybertip, django_capture_on_commit_callbacks):
    item = make_confirmed(1, reviewer, annotations=["generativeAi"])
    lena.post("/reports/build/")
    report = Report.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = lena.post(f"/reports/{report.pk}/approve/")
    assert response.status_code == 302
    report.refresh_from_db()
    assert report.state == Report.State.FINISHED and report.finished_at
    [finished] = cybertip.finished_reports()
    assert finished.id == report.ncmec_report_id
    [sent] = finished.files.values()
    assert sent["md5"] == item.md5 and sent["size"] == item.size_bytes and b"<fileViewedByEsp>true" in sent["details"]
    assert steps(report) == ["status", "submit", "upload", "fileinfo", "finish"]
    calls = list(ApiCall.objects.filter(report=report))
    assert [c.request_id for c in calls] == [c["request_id"] for c in cybertip.calls]
    assert all(c.status_code == 200 and c.response_code == 0 and c.response_body for c in calls)
    assert "bytes not kept" in calls[2].request_body and "<incidentSummary>" in calls[1].request_body
    actions = list(AuditEvent.objects.filter(subject_kind__in=["report", "reportfile"]).values_list("action", flat=True))
    assert actions[-6:] == ["report.approved", "report.submitting", "report.opened", "report.file_uploaded", "report.file_described", "report.finished"]
    page = lena.get(f"/reports/{report.pk}/").content.decode()
    assert f'id="ncmec-id">{report.ncmec_report_id}<' in page and calls[-1].request_id in page and "Finished" in page


def test_the_scanner_sees_reported_and_the_ncmec_report_id(api, reviewer, lead, cybertip, django_capture_on_commit_callbacks):
    submission_id = push(api, metadata=make_metadata("api/1")).json()["id"]
    item = previews.item_previews_make(item_id=Submission.objects.get(pk=submission_id).item_id)
    with override_settings(TSREVIEW_QA_SAMPLE_PERCENT=0):
        claim = queue.item_claim(user=reviewer)
        look(reviewer, item, claim)
        decisions.decision_record(user=reviewer, claim=claim, verdict="confirmed", classification="A1")
    body = api.get(f"/api/v1/submissions/{submission_id}").json()
    assert (body["status"], body["report"]) == ("confirmed", None)
    report = drafting.report_draft_build(actor=lead)[0]
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.report_approve(actor=lead, report=report)
    report.refresh_from_db()
    body = api.get(f"/api/v1/submissions/{submission_id}").json()
    assert (body["status"], body["report"]) == ("reported", str(report.ncmec_report_id))


def test_a_crash_after_submit_resumes_with_the_same_report_id(approved, cybertip, monkeypatch):
    real_upload = submit._upload

    def crash(*args, **kwargs):
        raise WorkerCrash

    monkeypatch.setattr(submit, "_upload", crash)
    with pytest.raises(WorkerCrash):
        lifecycle.report_send(report_id=approved.pk)
    approved.refresh_from_db()
    opened = approved.ncmec_report_id
    assert opened is not None and approved.state == Report.State.APPROVED
    monkeypatch.setattr(submit, "_upload", real_upload)
    assert lifecycle.report_send(report_id=approved.pk) == Report.State.FINISHED
    approved.refresh_from_db()
    assert approved.ncmec_report_id == opened
    assert list(cybertip.reports) == [opened] and len(cybertip.finished_reports()) == 1
    assert steps(approved) == ["status", "submit", "upload", "fileinfo", "finish"]
    assert AuditEvent.objects.filter(action="report.finished").count() == 1


def test_a_worker_that_died_holding_the_lease_is_resumed_by_the_sweep(approved, cybertip, monkeypatch):
    monkeypatch.setattr(submit, "_upload", lambda *a, **k: (_ for _ in ()).throw(WorkerCrash()))
    with pytest.raises(WorkerCrash):
        lifecycle.report_send(report_id=approved.pk)
    monkeypatch.undo()
    # A killed process never runs its `finally`: the lease stays until it runs out.
    Report.objects.filter(pk=approved.pk).update(send_lease_until=approved.approved_at)
    assert tasks.reports_resume() == 1  # tasks run in-process in the tests
    approved.refresh_from_db()
    assert approved.state == Report.State.FINISHED and len(cybertip.reports) == 1


def test_a_second_run_while_one_holds_the_lease_does_nothing(approved, cybertip):
    from django.utils import timezone

    Report.objects.filter(pk=approved.pk).update(send_lease_until=timezone.now() + lifecycle.SEND_LEASE)
    assert lifecycle.report_send(report_id=approved.pk) == Report.State.APPROVED
    assert not ApiCall.objects.exists()


def test_a_4100_at_fileinfo_retracts_the_report_and_the_lead_sees_why(lena, approved, cybertip):
    cybertip.fail("fileinfo", "code:4100")
    assert lifecycle.report_send(report_id=approved.pk) == Report.State.FAILED
    approved.refresh_from_db()
    assert approved.retracted_at and "4100" in approved.failure
    [opened] = cybertip.reports.values()
    assert opened.retracted and not opened.finished and not cybertip.finished_reports()
    assert steps(approved) == ["status", "submit", "upload", "fileinfo", "retract"]
    failed = AuditEvent.objects.get(action="report.failed")
    assert failed.data["retracted"] is True and "4100" in failed.data["reason"]
    assert not Hold.objects.exists()
    page = lena.get(f"/reports/{approved.pk}/").content.decode()
    assert "the unfinished report was retracted" in page and "4100" in page and 'id="reopen"' in page
    assert lena.post(f"/reports/{approved.pk}/reopen/").status_code == 302
    approved.refresh_from_db()
    assert approved.state == Report.State.DRAFT and approved.ncmec_report_id is None
    assert AuditEvent.objects.get(action="report.reopened").data == {"old_ncmec_report_id": opened.id}


def test_a_timeout_at_finish_ends_with_exactly_one_finished_report(approved, cybertip):
    cybertip.fail("finish", "timeout")  # NCMEC finishes the report, but the answer comes too late
    tasks.report_send_task.delay(approved.pk)  # retried with backoff (at once, in-process, in the tests)
    approved.refresh_from_db()
    assert approved.state == Report.State.FINISHED
    assert len(cybertip.finished_reports()) == 1 and len(cybertip.reports) == 1
    finishes = list(ApiCall.objects.filter(report=approved, step="finish"))
    assert finishes[0].status_code is None and "no answer" in finishes[0].error
    assert finishes[1].response_code == 5102  # "already finished": the first one went through
    assert steps(approved).count("submit") == 1
    assert AuditEvent.objects.filter(action="report.finished").count() == 1
    assert Hold.objects.filter(report=approved).count() == 1


def test_a_timeout_before_ncmec_finished_is_retried_and_finishes(approved, cybertip):
    cybertip.fail("finish", "http:503")
    tasks.report_send_task.delay(approved.pk)
    approved.refresh_from_db()
    assert approved.state == Report.State.FINISHED and len(cybertip.finished_reports()) == 1
    assert [c.status_code for c in ApiCall.objects.filter(step="finish")] == [503, 200]


def test_transient_failures_that_outlast_the_retries_stall_for_a_lead_who_retries(
        lena, approved, cybertip, django_capture_on_commit_callbacks):
    cybertip.fail("status", "http:503", times=4)  # the first try and 3 retries
    tasks.report_send_task.delay(approved.pk)
    approved.refresh_from_db()
    assert approved.state == Report.State.STALLED and "HTTP 503" in approved.failure
    assert not cybertip.reports and AuditEvent.objects.filter(action="report.stalled").exists()
    assert 'id="retry"' in lena.get(f"/reports/{approved.pk}/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        assert lena.post(f"/reports/{approved.pk}/retry/").status_code == 302
    approved.refresh_from_db()
    assert approved.state == Report.State.FINISHED and len(cybertip.finished_reports()) == 1
    assert AuditEvent.objects.filter(action="report.retried", actor_name="lena").exists()


def test_an_unexpected_error_stalls_the_report_for_a_lead(approved, cybertip, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(submit, "_upload", broken)
    assert lifecycle.report_send(report_id=approved.pk) == Report.State.STALLED
    approved.refresh_from_db()
    assert "RuntimeError: a bug" in approved.failure and approved.send_lease_until is None


def test_refused_credentials_fail_without_opening_a_report(approved, cybertip, settings):
    settings.TSREVIEW_CYBERTIP_PASSWORD = "wrong"
    assert lifecycle.report_send(report_id=approved.pk) == Report.State.FAILED
    approved.refresh_from_db()
    assert "401" in approved.failure and approved.retracted_at is None
    assert steps(approved) == ["status"] and not cybertip.reports


def test_a_report_ncmec_refuses_at_submit_fails_with_nothing_to_retract(approved, cybertip):
    cybertip.fail("submit", "code:4100")
    assert lifecycle.report_send(report_id=approved.pk) == Report.State.FAILED
    approved.refresh_from_db()
    assert approved.ncmec_report_id is None and "4100" in approved.failure
    assert steps(approved) == ["status", "submit"]


def test_the_fake_refuses_documents_out_of_the_schemas_order(cybertip):
    from reports.cybertip.client import Client, Rejected

    client = Client.from_settings()
    out_of_order = (b"<report><reporter><reportingPerson><email>a@example.org</email></reportingPerson></reporter>"
                    b"<incidentSummary><incidentType>Child Sex Tourism</incidentType>"
                    b"<incidentDateTime>2026-01-01T00:00:00Z</incidentDateTime></incidentSummary></report>")
    with pytest.raises(Rejected) as refused:
        client.submit(report=None, document=out_of_order)
    assert refused.value.code == 4100
    with pytest.raises(Rejected) as malformed:
        client.submit(report=None, document=b"<report>")
    assert malformed.value.code == 4110


def test_fetch_xsd_downloads_the_schema_to_the_configured_path(cybertip, settings, tmp_path):
    settings.TSREVIEW_CYBERTIP_XSD = str(tmp_path / "xsd" / "cyber_tipline.xsd")
    out = io.StringIO()
    call_command("cybertip_fetch_xsd", stdout=out)
    assert (tmp_path / "xsd" / "cyber_tipline.xsd").read_bytes() == cybertip.xsd_bytes
    assert "Saved the CyberTipline schema" in out.getvalue()
    assert ApiCall.objects.get(step="xsd").url.endswith("/ispws/xsd")
    assert AuditEvent.objects.filter(action="cybertip.schema_fetched").exists()


def test_fetch_xsd_with_wrong_credentials_keeps_the_old_schema(cybertip, settings, tmp_path):
    target = tmp_path / "cyber_tipline.xsd"
    target.write_text("old")
    settings.TSREVIEW_CYBERTIP_XSD, settings.TSREVIEW_CYBERTIP_PASSWORD = str(target), "wrong"
    with pytest.raises(CommandError, match="401"):
        call_command("cybertip_fetch_xsd")
    assert target.read_text() == "old"


def test_fetch_xsd_without_a_configured_base_url_says_so(settings, db):
    settings.TSREVIEW_CYBERTIP_BASE_URL = ""
    with pytest.raises(CommandError, match="not configured"):
        call_command("cybertip_fetch_xsd")


def test_a_lead_can_give_up_a_stalled_report_which_is_retracted_and_can_be_reopened(lena, approved, cybertip, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug that repeats")

    submit_module = __import__("reports.cybertip.submit", fromlist=["_upload"])
    monkeypatch.setattr(submit_module, "_upload", broken)
    tasks.report_send_task.delay(approved.pk)  # submit goes through, then the upload breaks
    approved.refresh_from_db()
    assert approved.state == Report.State.STALLED and approved.ncmec_report_id
    assert lena.post(f"/reports/{approved.pk}/abandon/", {"reason": ""}).status_code == 302
    assert Report.objects.get(pk=approved.pk).state == Report.State.STALLED  # a reason is required
    done = lena.post(f"/reports/{approved.pk}/abandon/", {"reason": "The upload keeps failing"}, follow=True)
    assert done.status_code == 200, done.content
    approved.refresh_from_db()
    assert approved.state == Report.State.FAILED and approved.retracted_at is not None
    assert "given up by lena: The upload keeps failing" in approved.failure
    assert cybertip.reports[approved.ncmec_report_id].retracted
    assert AuditEvent.objects.filter(action="report.abandoned", actor_name="lena").exists()
    assert 'action="/reports/%d/reopen/"' % approved.pk in lena.get(f"/reports/{approved.pk}/").content.decode()
