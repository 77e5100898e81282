"""Lead pages that close the loop: the webhook dead-letter list (and, below, calibration).
Every view is lead-only: anyone else gets 404."""

import csv
import io
from datetime import datetime, time

from django.contrib import messages
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_GET, require_POST

from ..access import lead_required, notice_for_lead, quarantine_for_lead
from ..errors import Refused
from ..events import list_feedback_enabled
from ..feedback import exports, list_feedback, notices, webhooks
from ..intake import quarantine as quarantines
from ..leads import calibration


@require_GET
@lead_required
def dead_letters(request):
    return render(request, "reports/lead_webhooks.html", {"events": webhooks.dead_letters()})


@require_POST
@lead_required
def dead_letters_replay(request):
    ids = [int(v) for v in request.POST.getlist("event") if v.isdigit()]
    try:
        count = webhooks.events_replay(actor=request.user, event_ids=ids)
    except Refused as exc:
        messages.error(request, " ".join(exc.errors.values()))
        return render(request, "reports/lead_webhooks.html", {"events": webhooks.dead_letters()}, status=400)
    messages.success(request, f"{count} event(s) queued to be sent again, with their ids unchanged.")
    return redirect("lead-webhooks")


# --- Calibration ----------------------------------------------------------------------------------

CHART_W, CHART_H, PAD = 420, 170, 34


def _chart(group: dict, target: float) -> dict:
    """Geometry of a small precision-by-distance chart, drawn as SVG by the template: a point
    per bucket with its 95 % interval as a bar, and the target as a dashed line."""
    buckets = [b for b in group["buckets"] if b["start"] is not None and b["precision"] is not None]
    step = (CHART_W - 2 * PAD) / max(1, len(buckets))

    def y(value):
        return round(CHART_H - PAD - value * (CHART_H - 2 * PAD), 1)

    points = [{"x": round(PAD + step * (i + 0.5), 1), "y": y(b["precision"]), "low": y(b["precision_low"]),
               "high": y(b["precision_high"]), "label": f"{b['start']:g}", "below": b["precision"] < target,
               "title": f"{b['start']:g}–{b['end']:g}: {b['confirmed']} of {b['decided']} confirmed"}
              for i, b in enumerate(buckets)]
    return {"w": CHART_W, "h": CHART_H, "points": points, "target_y": y(target), "y0": y(0), "y1": y(1),
            "left": PAD, "right": CHART_W - PAD, "label_y": CHART_H - PAD + 14}


@require_GET
@lead_required
def calibration_page(request):
    data = calibration.calibration()
    for group in data["lists"]:
        for hashes in group["hash_types"]:
            hashes["chart"] = _chart(hashes, data["target_precision"])
    return render(request, "reports/lead_calibration.html", {"data": data, "reasons": calibration.REASONS})


@require_GET
@lead_required
def calibration_export(request, fmt):
    if fmt not in ("csv", "json"):
        raise Http404
    data = calibration.calibration()
    calibration.calibration_exported(actor=request.user, fmt=fmt)
    if fmt == "json":
        response = JsonResponse(data)
    else:
        writer_target = io.StringIO()
        writer = csv.writer(writer_target)
        writer.writerow(calibration.CSV_COLUMNS)
        writer.writerows(calibration.calibration_rows(data))
        response = HttpResponse(writer_target.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="calibration.{fmt}"'
    return response


# --- Quarantined list entries ---------------------------------------------------------------------

def _quarantine_page(request, status=200):
    return render(request, "reports/lead_quarantine.html", {"quarantines": quarantines.quarantines_active()}, status=status)


@require_GET
@lead_required
def quarantine_list(request):
    return _quarantine_page(request)


@require_POST
@lead_required
def quarantine_lift(request, quarantine_id):
    quarantine = quarantine_for_lead(quarantine_id)
    try:
        quarantines.quarantine_lift(actor=request.user, quarantine=quarantine, reason=request.POST.get("reason", ""))
    except Refused as exc:
        messages.error(request, " ".join(exc.errors.values()))
        return _quarantine_page(request, status=400)
    messages.success(request, f"Lifted: {quarantine.list_name} entry {quarantine.list_entry_id} matches wait in their usual place again.")
    return redirect("lead-quarantine")


# --- Feedback to list owners ----------------------------------------------------------------------

def _lists_page(request, status=200, error=""):
    try:
        public_key = exports.public_key_b64()
    except Refused:
        public_key = ""
    return render(request, "reports/lead_lists.html", {
        "lists": exports.lists_known(), "public_key": public_key, "error": error,
        "ncmec_enabled": list_feedback_enabled(), "feedback": list_feedback.feedback_recent()}, status=status)


@require_GET
@lead_required
def lists_page(request):
    return _lists_page(request)


@require_GET
@lead_required
def list_export(request):
    since = None
    if request.GET.get("since"):
        since = parse_date(request.GET["since"]) if len(request.GET["since"]) == 10 else None
        if since is None:
            return _lists_page(request, status=400, error="since: a date as YYYY-MM-DD.")
        since = timezone.make_aware(datetime.combine(since, time.min))
    try:
        body = exports.list_export(actor=request.user, list_name=request.GET.get("list", ""), since=since)
    except Refused as exc:
        return _lists_page(request, status=400, error=" ".join(exc.errors.values()))
    response = HttpResponse(body, content_type="application/json")
    response["Content-Disposition"] = 'attachment; filename="list-export.json"'
    return response


# --- Notices to dataset vendors -------------------------------------------------------------------

def _notices_page(request, status=200):
    return render(request, "reports/lead_notices.html", {"notices": notices.notices_all()}, status=status)


@require_GET
@lead_required
def notice_list(request):
    return _notices_page(request)


def _notice_action(request, notice_id, action, done):
    notice = notice_for_lead(notice_id)
    try:
        action(notice)
    except Refused as exc:
        messages.error(request, " ".join(exc.errors.values()))
        return _notices_page(request, status=400)
    messages.success(request, done)
    return redirect("lead-notices")


@require_POST
@lead_required
def notice_send(request, notice_id):
    return _notice_action(request, notice_id, lambda n: notices.vendor_notice_send(
        actor=request.user, notice=n, recipient=request.POST.get("recipient", "")), "Notice sent.")


@require_POST
@lead_required
def notice_acknowledge(request, notice_id):
    return _notice_action(request, notice_id, lambda n: notices.vendor_notice_acknowledge(
        actor=request.user, notice=n, acknowledgement=request.POST.get("acknowledgement", "")), "Acknowledgement recorded.")
