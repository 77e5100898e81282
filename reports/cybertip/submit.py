"""Sending an approved report, one step at a time: status → submit → upload → fileinfo → finish.

Each step's result (NCMEC's reportId, each fileId, each fileinfo) is committed before the next
step starts, so a run that dies resumes where it stopped with the same reportId. NCMEC refuses
a second /finish with 5102, which counts as done: a report is finished at most once. A lease on
the report keeps two workers from running its steps at the same time.

Transient failures (no answer, 5xx) raise Transient for the task to retry with backoff. A
failure that cannot succeed retracts the unfinished report and records why for the lead.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from lxml import etree

from ..audit import audit_record
from ..models import Report, ReportFile
from ..storage import media_store
from .client import Client, CyberTipError, Permanent, Rejected, Transient
from .xml import DocumentInvalid, SchemaUnavailable, document_check, fill_ids, upload_name

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=10)
ALREADY_FINISHED = 5102
SENDING = (Report.State.APPROVED,)

__all__ = ["Transient", "report_send", "report_stall"]


def report_send(*, report_id: int) -> str:
    """Run the steps still to do for an approved report; returns its state afterwards.

    Called by tasks.report_send_task only. Raises Transient when a retry later may succeed.
    Audited: report.opened, report.file_uploaded, report.file_described, report.finished,
    report.failed."""
    if not _lease_take(report_id):
        return Report.objects.get(pk=report_id).state  # finished, failed, or another run has it
    try:
        report = Report.objects.get(pk=report_id)
        try:
            client = Client.from_settings()
            _steps(client, report)
        except Transient:
            raise
        except (Permanent, DocumentInvalid, SchemaUnavailable, OSError, ValueError) as exc:
            _give_up(report, exc)
        except Exception as exc:  # a bug must not loop: stop and show the lead
            log.exception("sending report %s failed unexpectedly", report_id)
            report_stall(report_id=report_id, reason=f"unexpected error: {exc.__class__.__name__}: {exc}")
    finally:
        Report.objects.filter(pk=report_id).update(send_lease_until=None)
    return Report.objects.get(pk=report_id).state


def _lease_take(report_id: int, states=SENDING) -> bool:
    now = timezone.now()
    return bool(Report.objects.filter(pk=report_id, state__in=states).filter(
        Q(send_lease_until__isnull=True) | Q(send_lease_until__lt=now)).update(
        send_lease_until=now + LEASE, attempts=F("attempts") + 1))


def _lease_renew(report: Report) -> None:
    Report.objects.filter(pk=report.pk).update(send_lease_until=timezone.now() + LEASE)


def _steps(client: Client, report: Report) -> None:
    unapproved = report.files.filter(details_xml="").count()
    if unapproved:  # only what a lead approved is ever sent
        raise Permanent(f"{unapproved} file(s) in this report were never approved; reopen it and approve again.")
    if report.ncmec_report_id is None:
        client.status(report=report)
        document = document_check(etree.fromstring(report.report_xml.encode()))  # against today's schema
        answer = client.submit(report=report, document=document)
        _opened(report, int(answer.field("reportId")))
    for report_file in report.files.filter(uploaded_at__isnull=True).select_related("item"):
        _lease_renew(report)
        _upload(client, report, report_file)
    for report_file in report.files.filter(fileinfo_at__isnull=True):
        _lease_renew(report)
        doc = fill_ids(report_file.details_xml, report_id=report.ncmec_report_id, file_id=report_file.ncmec_file_id)
        client.fileinfo(report=report, report_file=report_file, document=document_check(doc))
        _step_done(report_file, "fileinfo_at", "report.file_described", {})
    try:
        client.finish(report=report, report_id=report.ncmec_report_id)
    except Rejected as exc:
        if exc.code != ALREADY_FINISHED:  # an earlier /finish went through; its answer was lost
            raise
    report_finished(report=report)


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


def _opened(report: Report, ncmec_id: int) -> None:
    with transaction.atomic():
        report.ncmec_report_id = ncmec_id
        report.save(update_fields=["ncmec_report_id"])
        audit_record(actor=None, action="report.opened", subject=report, data={"ncmec_report_id": ncmec_id})


def _step_done(report_file: ReportFile, field: str, action: str, data: dict, extra=()) -> None:
    with transaction.atomic():
        setattr(report_file, field, timezone.now())
        report_file.save(update_fields=[field, *extra])
        audit_record(actor=None, action=action, subject=report_file, item_id=report_file.item_id,
                     data={"report": report_file.report_id, **data})


def report_finished(*, report: Report) -> None:
    """Finished at NCMEC: record it and hold the reported items for the legal period.
    Audited: report.finished, hold.placed per item."""
    from ..reporting import holds_place

    with transaction.atomic():
        report = Report.objects.select_for_update(no_key=True).get(pk=report.pk)
        if report.state == Report.State.FINISHED:
            return
        report.state, report.finished_at, report.failure = Report.State.FINISHED, timezone.now(), ""
        report.save(update_fields=["state", "finished_at", "failure"])
        audit_record(actor=None, action="report.finished", subject=report,
                     data={"ncmec_report_id": report.ncmec_report_id, "files": report.files.count()})
        holds_place(report=report)


def _give_up(report: Report, exc: Exception) -> None:
    """A failure that cannot succeed: retract the unfinished report and say why."""
    reason = "; ".join(exc.errors) if isinstance(exc, DocumentInvalid) else str(exc)
    retracted = False
    if report.ncmec_report_id is not None:
        try:
            Client.from_settings().retract(report=report, report_id=report.ncmec_report_id)
            retracted = True
        except Rejected as retract_error:
            if retract_error.code == ALREADY_FINISHED:  # it was finished after all
                report_finished(report=report)
                return
            reason += f" (retract refused: {retract_error})"
        except CyberTipError as retract_error:
            reason += f" (retract failed: {retract_error}; NCMEC deletes unfinished reports within 24 hours)"
    with transaction.atomic():
        now = timezone.now()
        report.state, report.failure, report.failed_at = Report.State.FAILED, reason, now
        report.retracted_at = now if retracted else None
        report.save(update_fields=["state", "failure", "failed_at", "retracted_at"])
        audit_record(actor=None, action="report.failed", subject=report,
                     data={"reason": reason, "ncmec_report_id": report.ncmec_report_id, "retracted": retracted})


def report_abandon(*, actor, report: Report, reason: str) -> str:
    """A lead gives up on a stalled report: it is retracted at NCMEC (if it was opened there)
    and fails with the lead's reason; it can then be reopened. Audited: report.abandoned and
    report.failed."""
    from ..reporting import ReportInvalid

    reason = reason.strip()
    if not reason:
        raise ReportInvalid({"reason": "Say why the report is given up."})
    if not _lease_take(report.pk, states=(Report.State.STALLED,)):
        raise ReportInvalid({"state": "Only a stalled report that is not being sent can be given up."})
    try:
        with transaction.atomic():
            audit_record(actor=actor, action="report.abandoned", subject=report, data={"reason": reason})
        _give_up(Report.objects.get(pk=report.pk), Permanent(f"given up by {actor.get_username()}: {reason}"))
    finally:
        Report.objects.filter(pk=report.pk).update(send_lease_until=None)
    return Report.objects.get(pk=report.pk).state


def report_stall(*, report_id: int, reason: str) -> None:
    """Retries ran out on a transient failure: the report waits for a lead's retry.
    Audited: report.stalled."""
    with transaction.atomic():
        report = Report.objects.select_for_update(no_key=True).get(pk=report_id)
        if report.state != Report.State.APPROVED:
            return
        report.state, report.failure = Report.State.STALLED, f"Gave up retrying: {reason}"
        report.save(update_fields=["state", "failure"])
        audit_record(actor=None, action="report.stalled", subject=report, data={"reason": reason})
