"""HTML entry points: parse input, access helper, one operation, render."""

import json
import math

from django.contrib import messages
from django.db.models import Count
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from . import queue, review, wellness
from .access import is_lead, user_roles
from .decisions import ANNOTATIONS, DecisionInvalid, decision_record
from .forms import DecisionForm, SettingsForm
from .models import Claim, Decision, Item, ViewEvent, WellnessPolicy

PREVIEW_KINDS = {"thumb", "inspect-1", "inspect-2", "inspect-3"}
KEYS = [
    ("Space", "Reveal (hold, or press in click mode)"),
    ("1 2 3 4", "Confirm as A1, A2, B1, B2"),
    ("a b m u", "Not apparent CSAM: adult, benign, not a match, unreadable"),
    ("g", "Toggle the Generative AI annotation"),
    ("e", "Escalate to a lead (write a note)"),
    ("Enter", "Record the chosen decision"),
    ("s", "Skip (no penalty)"),
    ("?", "Show these keys"),
    ("Esc", "Clear the choice / close this help"),
]


def nav_context(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    policy = WellnessPolicy.current()
    day = wellness.exposure_today(user)
    share = wellness.cap_share(day, policy)
    return {"roles": user_roles(user), "is_lead": is_lead(user), "exposure": day, "policy": policy,
            "cap_percent": round(100 * share), "cap_decile": 10 * round(10 * share)}


@require_GET
def home(request):
    counts = dict(Item.objects.values_list("state").annotate(n=Count("id")))
    policy = WellnessPolicy.current()
    day = wellness.exposure_today(request.user)
    return render(request, "reports/home.html", {
        "waiting": counts.get(Item.State.QUEUED, 0) + counts.get(Item.State.QA, 0),
        "preparing": counts.get(Item.State.NEW, 0),
        "held": queue.claim_open_for(request.user),
        "day": day,
        "cap_reached": wellness.cap_reached(day, policy),
        "break_due": wellness.break_due(day, policy),
        "active_minutes": day.active_seconds // 60,
    })


def claim_and_open(request, *, stages=queue.DEFAULT_STAGES, back="home", nothing="Nothing is waiting for review right now."):
    """Lease the next item and open it; at the cap or with nothing waiting, say so on `back`."""
    try:
        claim = queue.item_claim(user=request.user, stages=stages)
    except queue.CapReached:
        messages.warning(request, queue.CapReached.message)
        return redirect(back)
    if claim is None:
        messages.info(request, nothing)
        return redirect(back)
    if claim.stage not in stages:
        messages.info(request, "Finish the item you hold first.")
    return redirect("review", item_id=claim.item_id)


@require_POST
def claim_next(request):
    return claim_and_open(request)


def _review_context(request, item, claim, form):
    submissions = item.submissions.select_related("scanner").prefetch_related("matches").order_by("created_at")
    matches = [m for s in submissions for m in s.matches.all()]
    settings = wellness.settings_effective(request.user)
    return {
        "item": item, "claim": claim, "form": form, "submissions": submissions, "matches": matches,
        "label": matches[0].short_label() if matches else "Known-hash match",
        "settings": settings, "keys": KEYS, "annotations": ANNOTATIONS,
        "viewed": ViewEvent.objects.filter(item=item, user=request.user).exists(),
        # Leads deciding an escalation see what came before; reviewers (first or QA) never do.
        "earlier": item.decisions.order_by("decided_at") if claim is None or claim.stage == Claim.Stage.LEAD else None,
        "inspect_kind": f"inspect-{settings.blur}",
        "classifications": [(c.value, c.label, str(n)) for n, c in enumerate(list(Decision.Classification)[1:], 1)],
        "reasons": [(r.value, r.label, key) for r, key in zip(list(Decision.Reason)[1:], "abmu")],
    }


@require_GET
def review_page(request, item_id):
    item, claim = review.item_for_user(request.user, item_id)
    return render(request, "reports/review.html", _review_context(request, item, claim, DecisionForm()))


@require_POST
def review_decide(request, item_id):
    item, claim = review.item_for_user(request.user, item_id, claim_required=True)
    form = DecisionForm(request.POST)
    if form.is_valid():
        try:
            decision_record(user=request.user, claim=claim, **form.cleaned_data)
        except DecisionInvalid as exc:
            for field, message in exc.errors.items():
                form.add_error(field if field in form.fields else None, message)
        else:
            messages.success(request, "Decision recorded.")
            return claim_next(request)
    return render(request, "reports/review.html", _review_context(request, item, claim, form), status=400)


@require_POST
def review_skip(request, item_id):
    _, claim = review.item_for_user(request.user, item_id, claim_required=True)
    queue.claim_skip(claim=claim)
    messages.info(request, "Skipped. The item went back to the queue.")
    return claim_next(request)


@require_POST
def review_heartbeat(request, item_id):
    """The open review page keeps its lease and reports active time."""
    claim = Claim.objects.filter(item_id=item_id, user=request.user, end=Claim.End.OPEN).first()
    day = wellness.activity_record(request.user)
    policy = WellnessPolicy.current()
    held = claim is not None and queue.claim_renew(claim=claim)
    return JsonResponse({"held": held, "break_due": wellness.break_due(day, policy),
                         "cap_percent": round(100 * wellness.cap_share(day, policy))})


@require_GET
def media_preview(request, item_id, kind):
    if kind not in PREVIEW_KINDS:
        raise Http404
    try:
        item, _ = review.item_for_user(request.user, item_id)
    except Http404:
        review.media_denied(user=request.user, item_id=item_id, what=kind)
        raise
    return _media_response(review.preview_fetch(user=request.user, item=item, kind=kind), "image/jpeg")


@require_POST
def media_original(request, item_id):
    """The original bytes, only for a deliberate reveal by the claim holder or a lead."""
    try:
        item, claim = review.item_for_user(request.user, item_id)
    except Http404:
        review.media_denied(user=request.user, item_id=item_id, what="original")
        raise
    mode = request.POST.get("mode") if request.POST.get("mode") in ViewEvent.Mode.values else ViewEvent.Mode.HOLD
    data, view = review.original_fetch(user=request.user, item=item, claim=claim, mode=mode)
    response = _media_response(data, item.mime_type)
    response["X-View-Id"] = str(view.pk)
    return response


def _media_response(data: bytes, content_type: str) -> HttpResponse:
    response = HttpResponse(data, content_type=content_type)
    response["Cache-Control"] = "no-store, private"
    response["Content-Disposition"] = "inline"
    # Uploaded bytes may also be HTML or a ZIP after the image (a polyglot); opened directly,
    # they run nothing and reach nothing.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@require_POST
def view_ended(request, view_id):
    view = get_object_or_404(ViewEvent, pk=view_id, user=request.user)
    try:
        seconds = float(json.loads(request.body or b"{}").get("seconds", 0))
        if not math.isfinite(seconds):
            raise ValueError(seconds)
    except (ValueError, TypeError, AttributeError):
        return JsonResponse({"errors": {"seconds": ["Send {\"seconds\": <number>}."]}}, status=400)
    return JsonResponse({"counted": review.view_seconds_record(view=view, seconds=seconds)})


def settings_page(request):
    policy = WellnessPolicy.current()
    own = wellness.settings_for(request.user)
    form = SettingsForm(request.POST or None, instance=own, policy=policy)
    if request.method == "POST" and form.is_valid():
        wellness.settings_update(user=request.user, changes={k: form.cleaned_data[k] for k in form.fields})
        messages.success(request, "Settings saved.")
        return redirect("settings")
    return render(request, "reports/settings.html", {"form": form}, status=400 if form.errors else 200)


@require_POST
def break_taken(request):
    wellness.break_taken(request.user)
    messages.success(request, "Welcome back.")
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()})
    return redirect(target if safe else reverse("home"))


def server_error(request):
    """Django's 500 handler: an unreachable database is a 503 the client may retry."""
    import sys

    from .api_errors import DATABASE_DOWN, UNAVAILABLE

    if isinstance(sys.exc_info()[1], DATABASE_DOWN):
        if request.path.startswith("/api/"):
            return JsonResponse(UNAVAILABLE, status=503, headers={"Retry-After": "30"})
        return HttpResponse("<!doctype html><title>Unavailable</title><h1>tsreview is briefly unavailable</h1>"
                            "<p>The database cannot be reached. Nothing was changed; try again in a minute.</p>",
                            status=503, headers={"Retry-After": "30"})
    return HttpResponse("<!doctype html><title>Error</title><h1>Something went wrong</h1>", status=500)
