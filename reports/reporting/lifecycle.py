"""The Report state machine: approve, send, finish, stall, fail, retry, give up, reopen.

Every change of Report.state is made here, through states.report_move. Sending runs the
steps in cybertip.submit, which records each step's result and tells this module how it
ended; only this module finishes, fails or stalls a report. Views have checked the lead role.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper, F, Q
from django.utils import timezone

from ..audit import audit_record
from ..cybertip import submit
from ..cybertip.statements import OVERRIDABLE, current_target, sightings_by_item
from ..cybertip.xml import DocumentInvalid, SchemaUnavailable, document_check, file_details_document, report_document
from ..errors import Refused
from ..events import report_events
from ..jobs import enqueue
from ..models import Report, ReportFile, ScannerEvent
from ..states import report_move
from .checklist import report_checklist
from .preservation import holds_place

log = logging.getLogger(__name__)
# A lease on sending, so that two workers never run the steps of one report at once.
SEND_LEASE = timedelta(minutes=10)
# Celery priorities on Redis: lower goes first. An urgent report (escalateToHighPriority) is sent
# ahead of every other report.
URGENT_PRIORITY, REPORT_PRIORITY = 0, 6


def _locked_in(report: Report, state: str, refusal: str) -> Report:
    """The report, locked, if it is in `state`; else Refused with `refusal`."""
    report = Report.objects.select_for_update(no_key=True).get(pk=report.pk)
    if report.state != state:
        raise Refused({"state": refusal.format(state=report.get_state_display())})
    return report


def draft_locked(report: Report) -> Report:
    """The report, locked, if it is still a draft (only a draft can change); else Refused."""
    return _locked_in(report, Report.State.DRAFT, "Only a draft can change; this report is {state}.")


def _move(report: Report, new: str, **fields) -> None:
    """Set the report's new state (checked by report_move) and the fields that go with it."""
    report.state = report_move(report.state, new)
    for name, value in fields.items():
        setattr(report, name, value)
    report.save(update_fields=["state", *fields])
    _tell_scanners(report)


def _tell_scanners(report: Report) -> None:
    """The moves a scanner hears of (events.py): finished at NCMEC is "reported" with the
    report id; a report opened at NCMEC and retracted there is "retracted"."""
    if report.state == Report.State.FINISHED:
        report_events(report, type=ScannerEvent.Type.REPORTED, report=str(report.ncmec_report_id))
    elif report.state == Report.State.FAILED and report.retracted_at and report.ncmec_report_id:
        report_events(report, type=ScannerEvent.Type.RETRACTED, report=str(report.ncmec_report_id))


def report_approve(*, actor, report: Report) -> Report:
    """A lead approves a draft for sending. Refused while anything required is missing and not
    attested, or when the documents do not validate against NCMEC's schema and its documented
    limits. The documents are built from the facts as they are now; the validated documents,
    the incident fields they state and the target (test or production, base URL, credentials)
    are kept: what is sent is what was approved, where it was approved to go. Audited:
    report.approved; the sending task is queued when the transaction commits."""
    with transaction.atomic():
        report = draft_locked(report)
        checklist = report_checklist(report)
        if checklist.blocking:
            raise Refused({"checklist": "Complete or attest every missing item first."})
        files = [check.report_file for check in checklist.files]
        target = current_target()
        report.cybertip_target = target["cybertip_target"]  # read by priorCTReports while building
        try:
            document = document_check(report_document(report, files)).decode()
            for group in sightings_by_item(files).values():
                details = document_check(file_details_document(group[0], sightings=group)).decode()
                for report_file in group:  # a second sighting of the same bytes is sent in the first's
                    report_file.details_xml = details
        except (DocumentInvalid, SchemaUnavailable) as exc:
            raise Refused({"xml": "; ".join(getattr(exc, "errors", [str(exc)]))}) from None
        ReportFile.objects.bulk_update(files, ["details_xml"], batch_size=500)
        stated = {name: checklist.fields[name].value for name in OVERRIDABLE}
        _move(report, Report.State.APPROVED, report_xml=document, approved_by=actor, approved_at=timezone.now(),
              fully_actionable=checklist.fully_actionable, failure="", attempts=0, **stated, **target)
        audit_record(actor=actor, action="report.approved", subject=report,
                     data={"files": len(checklist.files), "fully_actionable": report.fully_actionable,
                           "target": target["cybertip_target"], "base_url": target["cybertip_base_url"],
                           "overridden": sorted(report.overrides), "urgent": report.urgent})
        transaction.on_commit(lambda: report_send_enqueue(report.pk))
    return report


def report_send_enqueue(report_id: int) -> None:
    urgent = Report.objects.filter(pk=report_id).exclude(urgent_reason="").exists()
    enqueue("report_send_task", report_id, priority=URGENT_PRIORITY if urgent else REPORT_PRIORITY)


def report_retry(*, actor, report: Report) -> Report:
    """A lead sends a stalled report again. Audited: report.retried."""
    with transaction.atomic():
        report = _locked_in(report, Report.State.STALLED, "Only a stalled report can be retried.")
        _move(report, Report.State.APPROVED, failure="", attempts=0, submit_started_at=None)
        audit_record(actor=actor, action="report.retried", subject=report, data={})
        transaction.on_commit(lambda: report_send_enqueue(report.pk))
    return report


def report_reopen(*, actor, report: Report) -> Report:
    """A failed (retracted) report goes back to being a draft, to be fixed and approved again;
    its call log stays. Audited: report.reopened with the old NCMEC id."""
    with transaction.atomic():
        report = _locked_in(report, Report.State.FAILED, "Only a failed report can be reopened.")
        old_id = report.ncmec_report_id
        # A /submit whose id was never saved may have left an unfinished report at NCMEC: keep saying so.
        orphan = report.submit_intent_at if report.may_exist_unfinished else report.orphan_submit_at
        _move(report, Report.State.DRAFT, ncmec_report_id=None, report_xml="", submit_intent_at=None,
              submit_started_at=None,
              orphan_submit_at=orphan, cybertip_target="", cybertip_base_url="", cybertip_credentials="")
        report.files.update(details_xml="", ncmec_file_id="", uploaded_at=None, fileinfo_at=None)
        audit_record(actor=actor, action="report.reopened", subject=report, data={"old_ncmec_report_id": old_id})
    return report


# --- Sending ------------------------------------------------------------------------------------

def report_send(*, report_id: int) -> str:
    """Run the steps still to do for an approved report; returns its state afterwards.

    Called by tasks.report_send_task only. Raises submit.Transient when a retry later may
    succeed. The lease is a fencing token: every step first checks that it is still this run's
    (a run that outlasted it stops, and leaves the report to the run that holds it now).
    Audited: the steps' events, then report.finished or report.failed (or report.stalled after
    an unexpected error, or when an earlier /submit's answer is unknown)."""
    lease = _lease_take(report_id)
    if lease is None:
        return Report.objects.get(pk=report_id).state  # finished, failed, or another run has it
    try:
        report = Report.objects.get(pk=report_id)
        try:
            submit.report_steps(report=report, renew=lambda: _lease_renew(lease))
        except submit.Transient:
            raise
        except submit.LeaseLost as exc:
            log.warning("sending report %s stopped: %s", report_id, exc or "its lease ran out and another run holds it")
        except submit.SubmitInDoubt as exc:
            report_stall(report_id=report_id, reason=str(exc))
        except submit.GIVE_UP as exc:
            _give_up(report, exc)
        except Exception as exc:  # a bug must not loop: stop and show the lead
            log.exception("sending report %s failed unexpectedly", report_id)
            report_stall(report_id=report_id, reason=f"unexpected error: {exc.__class__.__name__}: {exc}")
        else:
            report_finished(report=report)
    finally:
        lease.release()
    return Report.objects.get(pk=report_id).state


class _Lease:
    """A held send lease; its end time is the fencing token every step checks."""

    def __init__(self, report_id: int, until):
        self.report_id, self.until = report_id, until

    def release(self) -> None:
        Report.objects.filter(pk=self.report_id, send_lease_until=self.until).update(send_lease_until=None)


def _lease_take(report_id: int, states=(Report.State.APPROVED,)) -> _Lease | None:
    now = timezone.now()
    until = now + SEND_LEASE
    taken = Report.objects.filter(pk=report_id, state__in=states).filter(
        Q(send_lease_until__isnull=True) | Q(send_lease_until__lt=now)).update(
        send_lease_until=until, attempts=F("attempts") + 1)
    return _Lease(report_id, until) if taken else None


def _lease_renew(lease: _Lease) -> None:
    """Renew the lease if it is still this run's; else submit.LeaseLost."""
    until = timezone.now() + SEND_LEASE
    if not Report.objects.filter(pk=lease.report_id, send_lease_until=lease.until).update(send_lease_until=until):
        raise submit.LeaseLost()
    lease.until = until


def report_finished(*, report: Report) -> None:
    """Finished at NCMEC: record it and hold the reported items for the legal period.
    Audited: report.finished, hold.placed per item."""
    with transaction.atomic():
        report = Report.objects.select_for_update(no_key=True).get(pk=report.pk)
        if report.state == Report.State.FINISHED:
            return
        _move(report, Report.State.FINISHED, finished_at=timezone.now(), failure="")
        audit_record(actor=None, action="report.finished", subject=report,
                     data={"ncmec_report_id": report.ncmec_report_id, "files": report.files.count()})
        holds_place(report=report)


def _give_up(report: Report, exc: Exception) -> None:
    """A failure that cannot succeed: retract the unfinished report and say why."""
    reason = "; ".join(exc.errors) if isinstance(exc, DocumentInvalid) else str(exc)
    outcome, note = submit.report_retract(report=report)
    if outcome == "finished":  # it was finished after all
        report_finished(report=report)
        return
    reason += note
    retracted = outcome == "retracted"
    with transaction.atomic():
        report = Report.objects.select_for_update(no_key=True).get(pk=report.pk)
        now = timezone.now()
        _move(report, Report.State.FAILED, failure=reason, failed_at=now, retracted_at=now if retracted else None)
        audit_record(actor=None, action="report.failed", subject=report,
                     data={"reason": reason, "ncmec_report_id": report.ncmec_report_id, "retracted": retracted})


def report_abandon(*, actor, report: Report, reason: str) -> str:
    """A lead gives up on a stalled report: it is retracted at NCMEC (if it was opened there)
    and fails with the lead's reason; it can then be reopened. Audited: report.abandoned and
    report.failed."""
    reason = reason.strip()
    if not reason:
        raise Refused({"reason": "Say why the report is given up."})
    lease = _lease_take(report.pk, states=(Report.State.STALLED,))
    if lease is None:
        raise Refused({"state": "Only a stalled report that is not being sent can be given up."})
    try:
        with transaction.atomic():
            audit_record(actor=actor, action="report.abandoned", subject=report, data={"reason": reason})
        _give_up(Report.objects.get(pk=report.pk), submit.Permanent(f"given up by {actor.get_username()}: {reason}"))
    finally:
        lease.release()
    return Report.objects.get(pk=report.pk).state


def report_stall(*, report_id: int, reason: str) -> None:
    """Retries ran out on a transient failure: the report waits for a lead's retry.
    Audited: report.stalled."""
    with transaction.atomic():
        report = Report.objects.select_for_update(no_key=True).get(pk=report_id)
        if report.state != Report.State.APPROVED:
            return
        _move(report, Report.State.STALLED, failure=f"Gave up retrying: {reason}")
        audit_record(actor=None, action="report.stalled", subject=report, data={"reason": reason})


def reports_to_resume() -> list[int]:
    """Approved reports whose sending a dead worker left (its lease ran out) or whose task
    never reached the broker (approved minutes ago, never attempted)."""
    now = timezone.now()
    return list(Report.objects.filter(state=Report.State.APPROVED).filter(
        Q(send_lease_until__lt=now) | Q(attempts=0, approved_at__lt=now - timedelta(minutes=5)))
        .order_by(ExpressionWrapper(Q(urgent_reason=""), output_field=BooleanField()), "approved_at").values_list("pk", flat=True))  # urgent ones first
