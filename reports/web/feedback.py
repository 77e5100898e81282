"""Lead pages that close the loop: the webhook dead-letter list (and, below, calibration).
Every view is lead-only: anyone else gets 404."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from ..access import lead_required
from ..errors import Refused
from ..feedback import webhooks


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
