"""Review: who may see an item, and every look at its media recorded and metered."""

from django.db import transaction
from django.http import Http404
from django.utils import timezone

from .access import is_lead
from .audit import audit_record
from .models import Claim, Item, ViewEvent, WellnessPolicy
from .storage import media_store
from .wellness import exposure_add

# Seconds of slack for the clock difference between a browser's measurement and ours.
CLOCK_SLACK = 2.0


def item_for_user(user, pk, *, claim_required=False) -> tuple[Item, Claim | None]:
    """The only way to fetch an item for a person: the reviewer holding its claim, or a lead.

    Missing and not-yours both raise Http404. Returns the item and the person's open claim."""
    try:
        item = Item.objects.get(pk=int(pk))
    except (Item.DoesNotExist, ValueError, TypeError):
        raise Http404 from None
    claim = Claim.objects.filter(item=item, user=user, end=Claim.End.OPEN).first()
    holds = claim is not None and item.state == Item.State.CLAIMED and item.claimed_by_id == user.pk
    if holds:
        return item, claim
    if is_lead(user) and not claim_required:
        return item, None
    raise Http404


def preview_fetch(*, user, item: Item, kind: str) -> bytes:
    """A blurred preview; the caller has passed item_for_user. Audited: media.preview."""
    name = item.previews.get(kind)
    if not name or item.purged_at:  # not made yet, or destroyed by retention or on request
        raise Http404
    with transaction.atomic():
        audit_record(actor=user, action="media.preview", subject=item, item_id=item.pk, data={"kind": kind})
    return media_store().get(name)


def original_fetch(*, user, item: Item, claim: Claim | None, mode: str) -> tuple[bytes, ViewEvent]:
    """The original bytes for a deliberate reveal; the caller has passed item_for_user.

    Records a ViewEvent (its length comes later from the page) and counts a reveal.
    Audited: media.original."""
    if item.purged_at:
        raise Http404
    with transaction.atomic():
        view = ViewEvent.objects.create(item=item, user=user, claim=claim, mode=mode, started_at=timezone.now())
        audit_record(actor=user, action="media.original", subject=view, item_id=item.pk,
                     data={"mode": mode, "claim": claim.pk if claim else None})
        exposure_add(user, reveals=1)
    return media_store().get(item.original_blob), view


def media_denied(*, user, item_id, what: str) -> None:
    """Record an attempt to fetch media without the right to (answered 404)."""
    with transaction.atomic():
        audit_record(actor=user, action="media.denied", data={"item": str(item_id)[:32], "what": what})


def view_seconds_record(*, view: ViewEvent, seconds: float) -> float:
    """The page reports how long a reveal lasted. The server clamps it to the time since the
    original was sent and to the policy's longest counted reveal, records it once, and adds it
    to today's exposure. Audited: media.view_ended."""
    policy = WellnessPolicy.current()
    with transaction.atomic():
        view = ViewEvent.objects.select_for_update(no_key=True).get(pk=view.pk)
        if view.reported:
            return view.seconds
        elapsed = (timezone.now() - view.started_at).total_seconds() + CLOCK_SLACK
        clamped = round(max(0.0, min(float(seconds), elapsed, policy.max_reveal_clamp_seconds)), 2)
        view.seconds, view.reported = clamped, True
        view.save(update_fields=["seconds", "reported"])
        audit_record(actor=view.user, action="media.view_ended", subject=view, item_id=view.item_id,
                     data={"reported": round(float(seconds), 2), "counted": clamped})
        exposure_add(view.user, unblurred_seconds=clamped)
    return clamped
