"""Claiming the next item and opening it: the reviewer's Start and the lead's escalations."""

from django.contrib import messages
from django.shortcuts import redirect

from ..review import queue


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
