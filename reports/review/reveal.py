"""Reveals: every look at an item's media recorded, audited and metered.

Who may look is decided before these run (access.item_for_user)."""

from django.db import transaction
from django.utils import timezone

from ..audit import audit_record
from ..intake.storage import media_store
from ..models import Claim, Item, ViewEvent, WellnessPolicy
from .wellness import exposure_add

# Seconds of slack for the clock difference between a browser's measurement and ours.
CLOCK_SLACK = 2.0


class MediaGone(Exception):
    """The media was never made (previews pending) or has been destroyed."""


def preview_fetch(*, user, item: Item, kind: str) -> bytes:
    """A blurred preview; the caller has passed item_for_user. Audited: media.preview."""
    name = item.previews.get(kind)
    if not name or item.purged_at:  # not made yet, or destroyed by retention or on request
        raise MediaGone
    with transaction.atomic():
        audit_record(actor=user, action="media.preview", subject=item, item_id=item.pk, data={"kind": kind})
    return media_store().get(name)


def original_fetch(*, user, item: Item, claim: Claim | None, mode: str) -> tuple[bytes, ViewEvent]:
    """The original bytes for a deliberate reveal; the caller has passed item_for_user.

    Records a ViewEvent (its length comes later from the page) and counts a reveal.
    Audited: media.original."""
    if item.purged_at:
        raise MediaGone
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


def viewed_by(item, user) -> bool:
    """The one reveal check: has this person a recorded reveal of this file?"""
    return ViewEvent.objects.filter(item=item, user=user).exists()


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


def views_lock_unreported(claim: Claim) -> list[ViewEvent]:
    """Lock the claim's reveals whose length the page has not reported yet.

    Lock order, kept by every writer so that none waits in a circle (docs/architecture.md):
    claim, its views, the item, the audit head, today's exposure."""
    return list(ViewEvent.objects.select_for_update(no_key=True).filter(claim=claim, reported=False).order_by("pk"))


def views_close_unreported(claim: Claim, now) -> None:
    """A reveal whose page never reported its length counts as lasting until now, capped."""
    for view in views_lock_unreported(claim):
        view_seconds_record(view=view, seconds=(now - view.started_at).total_seconds())
