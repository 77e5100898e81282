"""The reviewer's pages: home, claim, review, reveal and decide; settings and breaks.
Each view: parse input, access helper, one operation, render."""

import json
import math

from django.conf import settings as django_settings
from django.contrib import messages
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from .. import access
from ..errors import Refused
from ..intake.media import BLURRED_KIND
from ..intake.quarantine import quarantines_for
from ..intake.submission import item_sightings
from ..leads.selectors import decision_history
from ..models import Claim, Decision, Item, ViewEvent, WellnessPolicy
from ..reporting import view_tasks
from ..review import clusters, queue, reveal, wellness
from ..review.decisions import ANNOTATIONS, decision_record
from .claiming import claim_and_open
from .forms import DecisionForm, SettingsForm, refused_into

KEYS = [
    ("Space", "Reveal (hold, or press in click mode)"),
    ("1 2 3 4", "Confirm as A1, A2, B1, B2"),
    ("a b m u", "Not apparent CSAM: adult, benign, not a match, unreadable"),
    ("g", "Toggle the Generative AI annotation"),
    ("e", "Escalate to a lead (write a note)"),
    ("Enter", "Record the chosen decision"),
    ("s", "Skip (no penalty)"),
    ("[ ]", "Previous / next sampled frame (videos, animated pictures)"),
    ("p", "Play a short segment from the frame, without sound (hold, or press in click mode)"),
    ("Shift+P", "The same segment with its sound (a separate choice, metered apart)"),
    (", .", "Previous / next file of a cluster (its near-duplicates)"),
    ("x", "Tick or untick the shown cluster member (ticked members get the same decision)"),
    ("?", "Show these keys"),
    ("Esc", "Clear the choice / close this help"),
]


@require_GET
def home(request):
    counts = queue.queue_counts()
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
        "looks_avoided": clusters.looks_avoided_today(request.user),
        "view_tasks_waiting": view_tasks.view_tasks_waiting(),
        "view_task_held": view_tasks.view_task_open_for(request.user),
    })


@require_POST
def claim_next(request):
    return claim_and_open(request)


def _cluster(request, item, claim):
    """The members waiting with this item, for the person deciding its first review: each with
    its distance, its blurred thumbnail and whether they revealed it."""
    if claim is None or claim.stage != Claim.Stage.REVIEW or claim.item_id != item.pk:
        return []
    return [(m, reveal.viewed_by(m, request.user)) for m in clusters.cluster_members(item.pk)]


def _review_context(request, item, claim, form, unticked=()):
    submissions = item_sightings(item)
    matches = [m for s in submissions for m in s.matches.all()]
    settings = wellness.settings_effective(request.user)
    context = {
        "item": item, "claim": claim, "form": form, "submissions": submissions, "matches": matches,
        "label": matches[0].short_label() if matches else "Known-hash match",
        "quarantines": quarantines_for(item),
        "settings": settings, "keys": KEYS, "annotations": ANNOTATIONS,
        "viewed": reveal.viewed_by(item, request.user),
        # Leads deciding an escalation see what came before; reviewers (first or QA) never do.
        "earlier": decision_history(item) if claim is None or claim.stage == Claim.Stage.LEAD else None,
        "inspect_kind": f"inspect-{settings.blur}",
        "frames": [(n, t, f"frame-{n:02d}-inspect-{settings.blur}") for n, t in enumerate(item.frame_times)],
        "segment_seconds": django_settings.TSREVIEW_VIDEO_SEGMENT_SECONDS,
        "classifications": [(c.value, c.label, str(n)) for n, c in enumerate(list(Decision.Classification)[1:], 1)],
        "reasons": [(r.value, r.label, key) for r, key in zip(list(Decision.Reason)[1:], "abmu", strict=True)],
        "unticked": {str(u) for u in unticked},
    }
    context["members"] = _cluster(request, item, claim)
    context["cluster_ids"] = ",".join(str(m.pk) for m, _ in context["members"])
    return context


@require_GET
def review_page(request, item_id):
    item, claim = access.item_for_user(request.user, item_id)
    return render(request, "reports/review.html", _review_context(request, item, claim, DecisionForm()))


@require_POST
def review_decide(request, item_id):
    item, claim = access.item_for_user(request.user, item_id, claim_required=True)
    _carried_reports(request)
    form = DecisionForm(request.POST)
    ticked = request.POST.getlist("members")
    # A page that showed a cluster says so ("cluster"), and sends the members left ticked.
    shown = {v for v in request.POST.get("cluster", "").split(",") if v}
    if form.is_valid():
        try:
            if not all(t.isdigit() and len(t) < 19 for t in ticked):
                raise Refused({"members": "Members are item numbers."})
            decision_record(user=request.user, claim=claim, **form.cleaned_data, ticked=[int(t) for t in ticked])
        except Refused as exc:
            refused_into(form, exc)
        else:
            messages.success(request, "Decision recorded." + (f" Applied to {len(ticked)} near-duplicate"
                                                                f"{'s' if len(ticked) != 1 else ''} too." if ticked else ""))
            return _after_claim(request, claim)
    unticked = shown - set(ticked)
    return render(request, "reports/review.html", _review_context(request, item, claim, form, unticked), status=400)


def _carried_reports(request) -> None:
    """Reveal reports the page carries in the decision form ("view_reports": a JSON list of
    {"view", "seconds", "painted"}), so that a report still in flight cannot lose the race with
    the decision. Recorded exactly as by view_ended; a malformed or foreign entry is ignored
    (the same report also goes to /views/)."""
    try:
        entries = json.loads(request.POST.get("view_reports") or "[]")
    except ValueError:
        return
    for entry in entries[:20] if isinstance(entries, list) else []:
        try:
            view = access.view_for_user(request.user, int(entry["view"]))
            seconds, painted = float(entry["seconds"]), entry.get("painted") is True
        except (Http404, KeyError, TypeError, ValueError):
            continue
        if math.isfinite(seconds):
            reveal.view_seconds_record(view=view, seconds=seconds, painted=painted)


@require_POST
def review_skip(request, item_id):
    _, claim = access.item_for_user(request.user, item_id, claim_required=True)
    queue.claim_skip(claim=claim)
    messages.info(request, "Skipped. The item went back to the queue.")
    return _after_claim(request, claim)


def _after_claim(request, claim):
    """Where a person goes once done with a claim: a lead who held an escalation goes back to
    the escalation list (never handed an item of the ordinary queue); others to their next item."""
    if claim.stage == Claim.Stage.LEAD:
        return redirect("lead-escalations")
    return claim_next(request)


@require_POST
def review_heartbeat(request, item_id):
    """The open review page keeps its lease and reports active time."""
    claim = access.claim_for_user(request.user, item_id)
    day = wellness.activity_record(request.user)
    policy = WellnessPolicy.current()
    held = claim is not None and queue.claim_renew(claim=claim)
    return JsonResponse({"held": held, "break_due": wellness.break_due(day, policy),
                         "cap_percent": round(100 * wellness.cap_share(day, policy)),
                         "unblurred_seconds": round(day.unblurred_seconds, 1)})


@require_GET
def media_preview(request, item_id, kind):
    if not BLURRED_KIND.match(kind):  # a blurred view; the unblurred ones only by a reveal
        raise Http404
    try:
        item, _ = access.item_for_user(request.user, item_id)
    except Http404:
        reveal.media_denied(user=request.user, item_id=item_id, what=kind)
        raise
    try:
        data = reveal.preview_fetch(user=request.user, item=item, kind=kind)
    except reveal.MediaGone:
        raise Http404 from None
    except reveal.BelowMinimumBlur:
        return HttpResponse("This blur level is below the team's minimum.", status=403, content_type="text/plain")
    return _media_response(data, "image/jpeg")


@require_POST
def media_original(request, item_id):
    """The original bytes, only for a deliberate reveal by the claim holder or a lead."""
    try:
        item, claim = access.item_for_user(request.user, item_id)
    except Http404:
        reveal.media_denied(user=request.user, item_id=item_id, what="original")
        raise
    mode = request.POST.get("mode") if request.POST.get("mode") in ViewEvent.Mode.values else ViewEvent.Mode.HOLD
    frame = request.POST.get("frame", "")
    frame = int(frame) if frame.isdigit() and len(frame) < 4 else None
    try:
        data, content_type, view = reveal.original_fetch(user=request.user, item=item, claim=claim, mode=mode, frame=frame)
    except reveal.MediaGone:
        raise Http404 from None
    except queue.CapReached:
        return JsonResponse({"errors": {"cap": [queue.CapReached.message]}}, status=403)
    response = _media_response(data, content_type)
    response["X-View-Id"] = str(view.pk)
    return response


@require_POST
def media_segment(request, item_id):
    """A reduced clip from a sampled frame, only on a deliberate "play"; with sound only when
    asked ("sound=1", a second deliberate act)."""
    try:
        item, claim = access.item_for_user(request.user, item_id)
    except Http404:
        reveal.media_denied(user=request.user, item_id=item_id, what="segment")
        raise
    mode = request.POST.get("mode") if request.POST.get("mode") in ViewEvent.Mode.values else ViewEvent.Mode.HOLD
    frame = request.POST.get("frame", "0")
    try:
        data, view = reveal.segment_fetch(user=request.user, item=item, claim=claim, mode=mode,
                                          frame=int(frame) if frame.isdigit() and len(frame) < 4 else -1,
                                          sound=request.POST.get("sound") == "1")
    except reveal.MediaGone:
        raise Http404 from None
    except queue.CapReached:
        return JsonResponse({"errors": {"cap": [queue.CapReached.message]}}, status=403)
    response = _media_response(data, "video/webm")
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
    """The page reports a reveal: {"seconds": painted seconds, "painted": true|false}. Sent
    again on failure (with keepalive on unload, and carried in the decision form); only the
    first report counts."""
    view = access.view_for_user(request.user, view_id)
    try:
        body = json.loads(request.body or b"{}")
        seconds = float(body.get("seconds", 0))
        if not math.isfinite(seconds):
            raise ValueError(seconds)
        painted = body.get("painted", False)
        if not isinstance(painted, bool):
            raise TypeError(painted)
    except (ValueError, TypeError, AttributeError):
        return JsonResponse({"errors": {"seconds": ['Send {"seconds": <number>, "painted": <true|false>}.']}}, status=400)
    view = reveal.view_seconds_record(view=view, seconds=seconds, painted=painted)
    return JsonResponse({"counted": view.seconds, "painted": view.painted})


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


@require_POST
def view_task_claim(request):
    task = view_tasks.view_task_claim(user=request.user)
    if task is None:
        messages.info(request, "No files are waiting to be viewed.")
        return redirect("home")
    return redirect("view-task", task_id=task.pk)


def _view_task_context(request, task, errors=()):
    settings = wellness.settings_effective(request.user)
    items = list(Item.objects.filter(pk__in=task.items))
    items.sort(key=lambda i: task.items.index(i.pk))
    return {"task": task, "files": [(i, reveal.viewed_by(i, request.user)) for i in items], "first": items[0],
            "settings": settings, "inspect_kind": f"inspect-{settings.blur}", "keys": KEYS, "errors": errors}


@require_GET
def view_task_page(request, task_id):
    task = access.view_task_for_user(request.user, task_id)
    return render(request, "reports/view_task.html", _view_task_context(request, task))


@require_POST
def view_task_done(request, task_id):
    task = access.view_task_for_user(request.user, task_id)
    _carried_reports(request)
    confirmed = request.POST.getlist("members")
    try:
        if not all(c.isdigit() and len(c) < 19 for c in confirmed):
            raise Refused({"confirmed": "Files are item numbers."})
        done = view_tasks.view_task_complete(user=request.user, task=task, confirmed=[int(c) for c in confirmed])
    except Refused as exc:
        return render(request, "reports/view_task.html", _view_task_context(request, task, list(exc.errors.values())),
                      status=400)
    messages.success(request, f"Viewed and confirmed {len(done)} file{'s' if len(done) != 1 else ''} for report {task.report_id}.")
    return redirect("home")
