"""The lead's CyberTipline report pages: parse input, one operation from reporting, render.
Every page is lead-only (others get 404)."""

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from .. import access
from ..access import lead_required
from ..cybertip.statements import NO_URL, current_target
from ..errors import Refused
from ..models import Report, ReportFile
from ..reporting import checklist, drafting, lifecycle, preservation, selectors, view_tasks
from .forms import AttestForm, DestroyForm, HoldExtendForm, MoveForm, ReportForm, refused_into


def _perform(request, operation, done, form=None):
    """Run one lead action and say how it went as page messages: the form's errors, the
    stage's refusal, or `done` (a text, or a function of the operation's result). Returns the
    result, or None when nothing was done."""
    if form is not None and not form.is_valid():
        for field, errors in form.errors.items():
            label = form.fields[field].label or field if field in form.fields else ""
            messages.error(request, f"{label}: {' '.join(errors)}" if label else " ".join(errors))
        return None
    try:
        result = operation(**(form.cleaned_data if form is not None else {}))
    except Refused as exc:
        for message in exc.errors.values():
            messages.error(request, message)
        return None
    messages.success(request, done(result) if callable(done) else done)
    return result


@require_GET
@lead_required
def report_list(request):
    state = request.GET.get("state") if request.GET.get("state") in Report.State.values else Report.State.DRAFT
    reports = selectors.reports_in_state(state)
    counts = selectors.report_counts()
    return render(request, "reports/report_list.html", {
        "reports": reports, "state": state, "waiting": selectors.unreported_sightings().count(),
        "states": [(value, label, counts.get(value, 0)) for value, label in Report.State.choices]})


@require_POST
@lead_required
def report_build(request):
    drafts = drafting.report_draft_build(actor=request.user)
    messages.success(request, f"{len(drafts)} draft report{'s' if len(drafts) != 1 else ''} received new files.")
    return redirect("report-list")


def _files_xml(report: Report, files: list[ReportFile]) -> list[tuple[ReportFile, str, list[str], ReportFile | None]]:
    if report.state == Report.State.DRAFT:
        return checklist.files_preview(files)
    return [(f, f.details_xml, [], None) for f in files]


def _detail_context(report: Report, form) -> dict:
    checks = checklist.report_checklist(report)
    files = [check.report_file for check in checks.files]
    if report.state == Report.State.DRAFT:
        document, problems = checklist.report_preview(report, files)
        document = document.decode()
    else:
        document, problems = report.report_xml, []
    files_xml = _files_xml(report, files)
    return {
        "report": report, "form": form, "checklist": checks, "document": document,
        "problems": problems + [f"File {f.item_id}: {p}" for f, _, file_problems, _ in files_xml for p in file_problems],
        "files_xml": files_xml, "no_url_field": NO_URL,
        "target": current_target() if report.state == Report.State.DRAFT else None,
        "not_viewed": sorted({c.report_file.item_id for c in checks.files if not c.viewed and not c.report_file.item.purged_at}),
        "view_tasks": list(report.view_tasks.select_related("claimed_by").order_by("-created_at")[:5]),
        "drafts": selectors.other_drafts(report),
        "calls": selectors.report_calls(report),
        "holds": selectors.report_holds(report),
        "configured": bool(settings.TSREVIEW_CYBERTIP_BASE_URL),
    }


@require_GET
@lead_required
def report_detail(request, report_id):
    report = access.report_for_lead(report_id)
    return render(request, "reports/report_detail.html", _detail_context(report, ReportForm.for_report(report)))


@require_POST
@lead_required
def report_edit(request, report_id):
    report = access.report_for_lead(report_id)
    form = ReportForm(request.POST)
    if form.is_valid():
        try:
            drafting.report_update(actor=request.user, report=report, changes=form.cleaned_data)
            messages.success(request, "Report saved.")
            return redirect("report-detail", report_id=report.pk)
        except Refused as exc:
            refused_into(form, exc)
    return render(request, "reports/report_detail.html", _detail_context(report, form), status=400)


def _act(request, report_id, operation, done: str):
    report = access.report_for_lead(report_id)
    _perform(request, lambda: operation(actor=request.user, report=report), done)
    return redirect("report-detail", report_id=report.pk)


@require_POST
@lead_required
def report_approve(request, report_id):
    return _act(request, report_id, lifecycle.report_approve, "Approved. The report is being sent to the CyberTipline.")


@require_POST
@lead_required
def report_retry(request, report_id):
    return _act(request, report_id, lifecycle.report_retry, "Sending again.")


@require_POST
@lead_required
def report_abandon(request, report_id):
    report = access.report_for_lead(report_id)
    _perform(request, lambda: lifecycle.report_abandon(actor=request.user, report=report, reason=request.POST.get("reason", "")),
             lambda state: f"Given up: the report is {state}.")
    return redirect("report-detail", report_id=report.pk)


@require_POST
@lead_required
def report_reopen(request, report_id):
    return _act(request, report_id, lifecycle.report_reopen, "Reopened as a draft.")


@require_GET
@lead_required
def report_xml(request, report_id):
    """The report document (or, with ?file=, one file's fileDetails) as a download."""
    report = access.report_for_lead(report_id)
    context = _detail_context(report, None)
    body, name = context["document"], f"report-{report.pk}.xml"
    if request.GET.get("file"):
        row = next((row for row in context["files_xml"] if str(row[0].pk) == request.GET["file"]), None)
        body = (row[1] or next(r[1] for r in context["files_xml"] if r[0] == row[3])) if row else None
        if body is None:
            return HttpResponse("No such file in this report.", status=404, content_type="text/plain")
        name = f"report-{report.pk}-file-{request.GET['file']}.xml"
    response = HttpResponse(body, content_type="application/xml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_POST
@lead_required
def report_file_move(request, file_id):
    report_file = access.report_file_for_lead(file_id)
    form = MoveForm(request.POST)
    choice = form.cleaned_data["target"] if form.is_valid() else ""
    target = selectors.draft_for_lead(int(choice)) if choice.isdigit() else None
    if choice != "new" and target is None:
        messages.error(request, "Choose a draft report (or a new draft) to move the file to.")
        return redirect("report-detail", report_id=report_file.report_id)
    moved = _perform(request, lambda: drafting.report_file_move(actor=request.user, report_file=report_file, target=target),
                     lambda report: f"File moved to report {report.pk}.")
    return redirect("report-detail", report_id=moved.pk if moved else report_file.report_id)


@require_POST
@lead_required
def report_attest(request, file_id):
    report_file = access.report_file_for_lead(file_id)
    form = AttestForm(request.POST)
    _perform(request, lambda **data: drafting.report_attest(actor=request.user, report_file=report_file, **data),
             lambda attestation: f"Attested: {attestation.field} is not available.", form)
    return redirect("report-detail", report_id=report_file.report_id)


@require_POST
@lead_required
def hold_extend(request, hold_id):
    hold = access.hold_for_lead(hold_id)
    _perform(request, lambda **data: preservation.hold_extend(actor=request.user, hold=hold, **data),
             f"Hold on item {hold.item_id} extended.", HoldExtendForm(request.POST))
    return redirect("report-detail", report_id=hold.report_id) if hold.report_id else redirect("report-list")


@require_POST
@lead_required
def material_destroy(request, item_id):
    item = access.item_for_lead(item_id)
    _perform(request, lambda reason: preservation.material_destroy(actor=request.user, item=item, reason=reason),
             f"The media of item {item.pk} was destroyed.", DestroyForm(request.POST))
    back = request.POST.get("report", "")
    return redirect("report-detail", report_id=int(back)) if back.isdigit() else redirect("report-list")


@require_POST
@lead_required
def report_view_task(request, report_id):
    """ "View these": ask a reviewer to look at the draft's files nobody viewed."""
    report = access.report_for_lead(report_id)
    _perform(request, lambda: view_tasks.view_task_create(lead=request.user, report=report),
             lambda task: f"Sent {len(task.items)} file{'s' if len(task.items) != 1 else ''} for a reviewer to view.")
    return redirect("report-detail", report_id=report.pk)
