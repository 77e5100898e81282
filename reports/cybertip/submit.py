"""Sending an approved report, one step at a time: status → submit → upload → fileinfo → finish.

Each step's result (NCMEC's reportId, each fileId, each fileinfo) is committed before the next
step starts, so a run that dies resumes where it stopped with the same reportId. NCMEC refuses
a second /finish with 5102, which counts as done: a report is finished at most once.

This module talks to NCMEC and records what each step returned; it never changes a report's
state. report_steps returns when NCMEC has finished the report and raises when it has not:
Transient (a retry later may succeed) or Permanent. reporting.lifecycle decides what follows.
"""

from django.db import transaction
from django.utils import timezone
from lxml import etree

from ..audit import audit_record
from ..intake.storage import media_store
from ..models import ApiCall, Report, ReportFile
from .client import Client, CyberTipError, Permanent, Rejected, Transient
from .statements import current_target, sightings_by_item
from .xml import DocumentInvalid, SchemaUnavailable, document_check, fill_ids, upload_name

ALREADY_FINISHED = 5102
# Failures that no retry can mend: the report is retracted and a lead is told why.
GIVE_UP = (Permanent, DocumentInvalid, SchemaUnavailable, OSError, ValueError)

__all__ = ["GIVE_UP", "LeaseLost", "Permanent", "SubmitInDoubt", "Transient", "report_retract", "report_steps"]


class LeaseLost(Exception):  # noqa: N818 — a signal to stop, not an error to show
    """The caller's send lease ran out and another run holds it now: stop before the next step."""


class SubmitInDoubt(Exception):  # noqa: N818
    """An earlier run sent /submit and never recorded its answer (it died or outlasted its
    lease); a second /submit could open a second report at NCMEC, so none is sent."""


def report_steps(*, report: Report, renew=lambda: None) -> None:
    """Run the steps still to do; returns once NCMEC has finished the report. `renew` is
    called before every step (status and submit, each file, finish): it renews the caller's
    send lease and raises LeaseLost if the lease is no longer the caller's, so a run that
    outlasted its lease never takes another step. Audited: report.opened,
    report.file_uploaded, report.file_described."""
    _steps(Client.from_settings(), report, renew)


def _steps(client: Client, report: Report, renew) -> None:
    unapproved = report.files.filter(details_xml="").count()
    if unapproved:  # only what a lead approved is ever sent
        raise Permanent(f"{unapproved} file(s) in this report were never approved; reopen it and approve again.")
    _target_check(report)
    if report.ncmec_report_id is None:
        _open(client, report, renew)
    groups = sightings_by_item(list(report.files.select_related("item")))
    for first, *others in groups.values():  # the same bytes go once; the others ride with the first
        renew()
        if first.uploaded_at is None:
            _upload(client, report, first)
        if first.fileinfo_at is None:
            renew()
            doc = fill_ids(first.details_xml, report_id=report.ncmec_report_id, file_id=first.ncmec_file_id)
            client.fileinfo(report=report, report_file=first, document=document_check(doc))
            _step_done(first, "fileinfo_at", "report.file_described", {})
        for other in others:
            if other.fileinfo_at is None:
                _same_bytes(first, other)
    renew()
    try:
        client.finish(report=report, report_id=report.ncmec_report_id)
    except Rejected as exc:
        if exc.code != ALREADY_FINISHED:  # an earlier /finish went through; its answer was lost
            raise


def _target_check(report: Report) -> None:
    """A report goes only where it was approved to go: a switch between test and production
    after approval stops it (reopen and approve it again for the new target)."""
    now = current_target()
    if not report.cybertip_target:  # approved before targets were recorded: it goes where it always would have
        Report.objects.filter(pk=report.pk).update(**now)
        report.cybertip_target, report.cybertip_base_url = now["cybertip_target"], now["cybertip_base_url"]
    if (now["cybertip_target"], now["cybertip_base_url"]) != (report.cybertip_target, report.cybertip_base_url):
        raise Permanent(f"This report was approved for the {report.cybertip_target} CyberTipline "
                        f"({report.cybertip_base_url}); the service is now configured for {now['cybertip_target']} "
                        f"({now['cybertip_base_url']}). Nothing was sent; reopen it and approve it again.")


def _open(client: Client, report: Report, renew) -> None:
    """/submit, with the intent recorded first: between the request and saving NCMEC's id lies
    a window in which a crash leaves an unfinished report at NCMEC (deleted there within 24 h).
    An answer that reached our call log before the crash is used; a request that got no answer
    is recorded as possibly left at NCMEC, and a new report is opened, unless another run's
    /submit may still be on its way (then SubmitInDoubt: a lead checks with NCMEC first)."""
    if report.submit_intent_at is not None:
        call = (ApiCall.objects.filter(report=report, step="submit", started_at__gte=report.submit_intent_at)
                .order_by("-id").first())
        recovered = _answer_field(call.response_body, "reportId") if call and call.response_code == 0 else ""
        if recovered.isdigit():
            _opened(report, int(recovered))
            return
        if call is not None and call.status_code is None:  # sent, never answered: it may exist
            _orphaned(report)
    renew()
    client.status(report=report)
    document = document_check(etree.fromstring(report.report_xml.encode()))  # against today's schema
    renew()
    _submit_begin(report)  # refuses while another run's /submit is unaccounted for
    _intent(report)
    try:
        answer = client.submit(report=report, document=document)
        ncmec_id = int(answer.field("reportId"))
    except Exception:
        _submit_end(report)  # this run saw the call end (no report id): a later run may submit again
        raise
    _opened(report, ncmec_id)


def _answer_field(body: str, tag: str) -> str:
    try:
        doc = etree.fromstring(body.encode(), etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return ""
    return (doc.findtext(tag) or "").strip()


def _intent(report: Report) -> None:
    with transaction.atomic():
        report.submit_intent_at = timezone.now()
        report.save(update_fields=["submit_intent_at"])
        audit_record(actor=None, action="report.submitting", subject=report,
                     data={"target": report.cybertip_target, "base_url": report.cybertip_base_url})


def _orphaned(report: Report) -> None:
    with transaction.atomic():
        report.orphan_submit_at = report.submit_intent_at
        report.save(update_fields=["orphan_submit_at"])
        audit_record(actor=None, action="report.maybe_left_at_ncmec", subject=report,
                     data={"submitted_at": report.submit_intent_at.isoformat(),
                           "note": "no report id was saved; NCMEC deletes an unfinished report within 24 hours"})


def _same_bytes(first: ReportFile, other: ReportFile) -> None:
    """A second sighting of bytes already uploaded: said in the first's fileDetails, not sent again."""
    with transaction.atomic():
        other.ncmec_file_id, other.uploaded_at, other.fileinfo_at = first.ncmec_file_id, first.uploaded_at, first.fileinfo_at
        other.save(update_fields=["ncmec_file_id", "uploaded_at", "fileinfo_at"])
        audit_record(actor=None, action="report.file_same_bytes", subject=other, item_id=other.item_id,
                     data={"report": other.report_id, "sent_with": first.pk, "file_id": first.ncmec_file_id})


def _upload(client: Client, report: Report, report_file: ReportFile) -> None:
    item = report_file.item
    try:
        data = media_store().get(item.original_blob)
    except FileNotFoundError:
        raise Permanent(f"upload: the media of item {item.pk} is gone (purged or destroyed)") from None
    answer = client.upload(report=report, report_file=report_file, report_id=report.ncmec_report_id,
                           filename=upload_name(item), data=data, content_type=item.mime_type)
    digest = answer.field("hash").lower()
    if digest and digest != item.md5:
        raise Transient(f"upload: NCMEC received bytes with another MD5 than item {item.pk}; uploading again")
    report_file.ncmec_file_id = answer.field("fileId")
    _step_done(report_file, "uploaded_at", "report.file_uploaded", {"file_id": report_file.ncmec_file_id},
               extra=["ncmec_file_id"])


def _submit_begin(report: Report) -> None:
    """Mark /submit as going out (committed before it does). SubmitInDoubt if an earlier run's
    /submit is still unaccounted for, or the report was opened meanwhile."""
    started = Report.objects.filter(pk=report.pk, ncmec_report_id__isnull=True, submit_started_at__isnull=True).update(
        submit_started_at=timezone.now())
    if not started:
        raise SubmitInDoubt("an earlier run sent /submit and its answer was never recorded (the run died or outlasted "
                            "its lease); no second /submit was sent. NCMEC deletes unfinished reports within 24 hours; "
                            "check with NCMEC, then retry.")


def _submit_end(report: Report) -> None:
    Report.objects.filter(pk=report.pk, ncmec_report_id__isnull=True).update(submit_started_at=None)


def _opened(report: Report, ncmec_id: int) -> None:
    """Record NCMEC's report id, even if this run's lease ran out meanwhile (the report exists
    at NCMEC); never over another id (then this run stops: LeaseLost)."""
    with transaction.atomic():
        if not Report.objects.filter(pk=report.pk, ncmec_report_id__isnull=True).update(
                ncmec_report_id=ncmec_id, submit_started_at=None):
            raise LeaseLost(f"report {report.pk} was opened by another run; NCMEC report {ncmec_id} is left unfinished")
        report.ncmec_report_id, report.submit_started_at = ncmec_id, None
        audit_record(actor=None, action="report.opened", subject=report, data={"ncmec_report_id": ncmec_id})


def _step_done(report_file: ReportFile, field: str, action: str, data: dict, extra=()) -> None:
    with transaction.atomic():
        setattr(report_file, field, timezone.now())
        report_file.save(update_fields=[field, *extra])
        audit_record(actor=None, action=action, subject=report_file, item_id=report_file.item_id,
                     data={"report": report_file.report_id, **data})



def report_retract(*, report: Report) -> tuple[str, str]:
    """Retract an unfinished report at NCMEC. Returns (outcome, note): "retracted", "finished"
    (NCMEC says it was finished after all), "not_opened" or "failed" (with why)."""
    if report.ncmec_report_id is None:
        return "not_opened", ""
    try:
        Client.from_settings().retract(report=report, report_id=report.ncmec_report_id)
        return "retracted", ""
    except Rejected as exc:
        if exc.code == ALREADY_FINISHED:
            return "finished", ""
        return "failed", f" (retract refused: {exc})"
    except CyberTipError as exc:
        return "failed", f" (retract failed: {exc}; NCMEC deletes unfinished reports within 24 hours)"
