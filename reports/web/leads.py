"""The lead workspace (HTML). Every view is lead-only: anyone else gets 404."""

import csv

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from ..access import item_for_lead, lead_required
from ..audit import audit_status
from ..errors import Refused
from ..intake.submission import item_sightings
from ..leads import selectors, targets
from ..leads import stats as lead_stats
from ..leads.overturn import decision_overturn
from ..models import Claim
from ..review import clusters, queue
from .claiming import claim_and_open
from .forms import DecisionLogFilter, OverturnForm, refused_into

PAGE_SIZE = 50
CSV_COLUMNS = ["decided_at", "decision_id", "item_id", "item_sha256", "reviewer", "stage", "verdict", "classification",
               "reason", "annotations", "viewed_unblurred", "supersedes", "seconds_taken", "note"]


def _filtered(request):
    form = DecisionLogFilter(request.GET or None)
    filters = {k: v for k, v in form.cleaned_data.items() if v} if form.is_valid() else {}
    return form, selectors.decision_log(**filters)


@require_GET
@lead_required
def decision_log(request):
    form, decisions = _filtered(request)
    page = Paginator(decisions, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "reports/lead_decisions.html", {"form": form, "page": page, "query": query.urlencode()},
                  status=400 if form.errors else 200)


def _cell(text: str) -> str:
    """Free text for a spreadsheet: a leading = + - @ would make it a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class _Echo:
    def write(self, value):
        return value


@require_GET
@lead_required
def decision_log_csv(request):
    """The same filter as the log, streamed row by row. Audited: decisions.exported."""
    form, decisions = _filtered(request)
    selectors.decisions_exported(actor=request.user, filters=request.GET.dict())
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(CSV_COLUMNS)
        for d in decisions.iterator(chunk_size=500):
            taken = round((d.decided_at - d.started_at).total_seconds(), 1) if d.started_at else ""
            yield writer.writerow([d.decided_at.isoformat(), d.pk, d.item_id, d.item.sha256, d.reviewer_name, d.stage,
                                   d.verdict, d.classification, d.reason, " ".join(d.annotations), d.viewed_unblurred,
                                   d.supersedes_id or "", taken, _cell(d.note)])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="decisions.csv"'
    return response


@require_GET
@lead_required
def item_detail(request, item_id):
    item = item_for_lead(item_id)
    return _item_page(request, item, OverturnForm())


def _item_page(request, item, form, status=200):
    return render(request, "reports/lead_item.html", {
        "item": item, "submissions": item_sightings(item), "decisions": selectors.decision_history(item),
        "timeline": selectors.item_timeline(item), "form": form, "views": selectors.item_views(item),
        "members": clusters.cluster_members(item.pk),
    }, status=status)


@require_POST
@lead_required
def cluster_split(request, item_id):
    """A lead splits wrong members off a cluster; each is then reviewed on its own."""
    item = item_for_lead(item_id)
    ids = request.POST.getlist("members")
    try:
        if not all(i.isdigit() and len(i) < 19 for i in ids):
            raise Refused({"members": "Members are item numbers."})
        done = clusters.cluster_split(lead=request.user, rep_id=item.pk, member_ids=ids)
    except Refused as exc:
        messages.error(request, " ".join(str(m) for m in exc.errors.values()))
        return _item_page(request, item, OverturnForm(), status=400)
    messages.success(request, f"Split off {len(done)} item{'s' if len(done) != 1 else ''}: each waits for its own review.")
    return redirect("lead-item", item_id=item.pk)


@require_POST
@lead_required
def item_overturn(request, item_id):
    item = item_for_lead(item_id)
    form = OverturnForm(request.POST)
    if form.is_valid():
        try:
            decision_overturn(lead=request.user, item=item, **form.cleaned_data)
        except Refused as exc:
            refused_into(form, exc)
        else:
            messages.success(request, "Overturned. The earlier decision stays on record.")
            return redirect("lead-item", item_id=item.pk)
    return _item_page(request, item, form, status=400)


@require_GET
@lead_required
def escalations(request):
    items = list(selectors.escalated_items()[:200])
    for item in items:
        item.disagreement = selectors.disagreement(item)
        item.notes = [d.note for d in item.decisions.all() if d.note]
    return render(request, "reports/lead_escalations.html", {"items": items, "held": queue.claim_open_for(request.user)})


@require_POST
@lead_required
def escalation_claim(request):
    return claim_and_open(request, stages=(Claim.Stage.LEAD,), back="lead-escalations",
                          nothing="No escalations are waiting.")


@require_GET
@lead_required
def stats(request):
    try:
        days = max(1, min(90, int(request.GET.get("days", 14))))
    except ValueError:
        days = 14
    return render(request, "reports/lead_stats.html", {
        **lead_stats.reviewer_stats(days=days), "queues": targets.queue_overview(days=7),
        "past_target": targets.past_target(), "targets": targets.tiers(), "clusters": clusters.cluster_stats(days=7)})



@require_GET
@lead_required
def audit_log(request):
    """The audit chain's head, what waits to be linked, and the newest checkpoint outside the
    database (a lead can compare it with the copy the checkpoint store keeps)."""
    return render(request, "reports/lead_audit.html", audit_status())
