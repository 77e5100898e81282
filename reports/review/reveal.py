"""Reveals: every look at an item's media recorded, audited and metered.

Who may look is decided before these run (access.item_for_user)."""

from django.conf import settings
from django.db import transaction
from django.db.models import Exists
from django.utils import timezone

from ..audit import audit_record
from ..intake.media import greyscale_rendering
from ..intake.storage import media_store
from ..intake.video import segment_make
from ..models import Claim, Item, ViewEvent, WellnessPolicy
from .wellness import CapReached, cap_reached, exposure_add, exposure_today

# Seconds of slack for the clock difference between a browser's measurement and ours.
CLOCK_SLACK = 2.0


class MediaGone(Exception):
    """The media was never made (previews pending) or has been destroyed."""


class BelowMinimumBlur(Exception):
    """A preview lighter than the policy's minimum blur was asked for."""


def preview_fetch(*, user, item: Item, kind: str) -> bytes:
    """A blurred preview; the caller has passed item_for_user. The policy's minimum blur holds
    here, not only in the page. Audited: media.preview."""
    if "inspect-" in kind and int(kind.rpartition("-")[2]) < WellnessPolicy.current().min_blur:
        raise BelowMinimumBlur
    name = item.previews.get(kind)
    if not name or item.purged_at:  # not made yet, or destroyed by retention or on request
        raise MediaGone
    with transaction.atomic():
        audit_record(actor=user, action="media.preview", subject=item, item_id=item.pk, data={"kind": kind})
    return media_store().get_part(name, kind)


def original_fetch(*, user, item: Item, claim: Claim | None, mode: str, frame: int | None = None
                   ) -> tuple[bytes, str, ViewEvent]:
    """The original for a deliberate reveal; the caller has passed item_for_user. Returns the
    bytes, their type and the ViewEvent (its length comes later from the page).

    For moving media (a video, an animated picture), the still of one sampled frame (`frame`,
    the first by default) at natural size: the file's own bytes never reach a browser. Refused at today's exposure cap
    (CapReached). Where the policy does not allow colour, the browser gets a greyscale rendering
    at natural size, never the colour bytes. Counts a reveal. Audited: media.original, saying
    which rendering (and frame) was sent."""
    if item.purged_at:
        raise MediaGone
    policy = WellnessPolicy.current()
    if cap_reached(exposure_today(user), policy):
        raise CapReached
    if item.is_moving:
        frame = frame or 0
        still = item.previews.get(f"frame-{frame:02d}-still")
        if still is None:  # no such frame, or the stills are not made yet
            raise MediaGone
        data, content_type = media_store().get(still), "image/jpeg"
    else:
        frame = None
        data, content_type = media_store().get(item.original_blob), item.mime_type
    rendering = "original"
    if not policy.allow_colour:
        data, content_type, rendering = greyscale_rendering(data), "image/png", "greyscale"
    with transaction.atomic():
        view = ViewEvent.objects.create(item=item, user=user, claim=claim, mode=mode, started_at=timezone.now(),
                                        rendering=rendering, frame=frame)
        audit_record(actor=user, action="media.original", subject=view, item_id=item.pk,
                     data={"mode": mode, "claim": claim.pk if claim else None, "rendering": rendering,
                           **({"frame": frame} if frame is not None else {})})
        exposure_add(user, reveals=1)
    return data, content_type, view


def segment_fetch(*, user, item: Item, claim: Claim | None, mode: str, frame: int, sound: bool = False
                  ) -> tuple[bytes, ViewEvent]:
    """A deliberate "play": a reduced clip, at most TSREVIEW_VIDEO_SEGMENT_SECONDS long, from
    sampled frame `frame` (greyscale where the policy does not allow colour), without sound
    unless `sound` (its own deliberate act, metered apart); the caller has passed
    item_for_user. Refused at the cap. The page reports how long it played. Audited:
    media.segment, saying whether with sound."""
    if item.purged_at or not item.is_video or not 0 <= frame < len(item.frame_times):
        raise MediaGone
    policy = WellnessPolicy.current()
    if cap_reached(exposure_today(user), policy):
        raise CapReached
    start, seconds = item.frame_times[frame], settings.TSREVIEW_VIDEO_SEGMENT_SECONDS
    clip = _segment_clip(item, frame=frame, start=start, seconds=seconds, grey=not policy.allow_colour, sound=sound)
    with transaction.atomic():
        view = ViewEvent.objects.create(item=item, user=user, claim=claim, mode=mode, started_at=timezone.now(), frame=frame,
                                        segment=True, sound=sound,
                                        rendering="original" if policy.allow_colour else "greyscale")
        audit_record(actor=user, action="media.segment", subject=view, item_id=item.pk,
                     data={"mode": mode, "claim": claim.pk if claim else None, "frame": frame, "from": start,
                           "seconds": seconds, "sound": sound, "rendering": view.rendering})
        exposure_add(user, reveals=1)
    return clip, view


def _segment_clip(item: Item, *, frame: int, start: float, seconds: float, grey: bool, sound: bool) -> bytes:
    """The clip, encoded once: the first play of a frame's segment (in colour or grey, with or
    without sound, at this length) encodes it and keeps it, encrypted, among the item's
    derivatives (never served as a preview: intake.media.BLURRED_KIND; destroyed with them at a
    purge); later plays read it back instead of encoding in the request."""
    kind = f"segment-{frame:02d}-{'grey' if grey else 'colour'}-{'sound' if sound else 'muted'}-{seconds:g}s"
    store = media_store()
    if item.previews.get(kind):
        return store.get(item.previews[kind])
    with store.open(item.original_blob) as source:  # read chunk by chunk, never whole
        clip = segment_make(source, start=start, seconds=seconds, grey=grey, sound=sound)
    name = store.put(clip)
    with transaction.atomic():
        locked = Item.objects.select_for_update(no_key=True).get(pk=item.pk)
        if locked.purged_at or kind in locked.previews or not locked.previews:  # destroyed, raced, or not made
            store.delete(name)
        else:
            locked.previews[kind] = name
            locked.save(update_fields=["previews"])
            item.previews = locked.previews
    return clip


def played_segments(item, user) -> list[list[float]]:
    """The segments this person played of a video, as [from, to, with sound], in order."""
    views = ViewEvent.objects.filter(item=item, user=user, segment=True, painted=True).order_by("started_at")
    times = item.frame_times
    return [[times[v.frame], round(times[v.frame] + v.seconds, 1), v.sound]
            for v in views if v.frame is not None and v.frame < len(times)]


def media_denied(*, user, item_id, what: str) -> None:
    """Record an attempt to fetch media without the right to (answered 404)."""
    with transaction.atomic():
        audit_record(actor=user, action="media.denied", data={"item": str(item_id)[:32], "what": what})


def _painted_views(item, user):
    return ViewEvent.objects.filter(item=item, user=user, painted=True)


def viewed_by(item, user) -> bool:
    """The one reveal check: has this person a painted view of this file (DESIGN §5)?"""
    return _painted_views(item, user).exists()


def viewed_exists(item, user) -> Exists:
    """viewed_by as an expression, for an annotation (item: an OuterRef or an id)."""
    return Exists(_painted_views(item, user))


def painted_frames(item, user) -> list[int]:
    """A video's sampled frames this person has looked at (painted views), in order."""
    frames = ViewEvent.objects.filter(item=item, user=user, painted=True, frame__isnull=False, segment=False)
    return sorted(set(frames.values_list("frame", flat=True)))


def view_seconds_record(*, view: ViewEvent, seconds: float, painted: bool = False) -> ViewEvent:
    """The page reports how long the original was on screen, and whether it was painted at all.
    The server clamps the length to the time since the original was sent and to the policy's
    longest counted reveal, and records it once: a retried report changes nothing. The reveal
    is a view only if it was painted for TSREVIEW_MIN_VIEW_SECONDS after clamping. Adds the
    seconds to today's exposure. Audited: media.view_ended."""
    policy = WellnessPolicy.current()
    with transaction.atomic():
        view = ViewEvent.objects.select_for_update(no_key=True).get(pk=view.pk)
        if view.reported:
            return view
        elapsed = (timezone.now() - view.started_at).total_seconds() + CLOCK_SLACK
        clamped = round(max(0.0, min(float(seconds), elapsed, policy.max_reveal_clamp_seconds)), 2)
        view.seconds, view.reported = clamped, True
        view.painted = bool(painted) and clamped >= settings.TSREVIEW_MIN_VIEW_SECONDS
        view.save(update_fields=["seconds", "reported", "painted"])
        audit_record(actor=view.user, action="media.view_ended", subject=view, item_id=view.item_id,
                     data={"reported": round(float(seconds), 2), "counted": clamped, "painted": view.painted})
        exposure_add(view.user, unblurred_seconds=clamped, **({"audio_seconds": clamped} if view.sound else {}))
    return view


def views_lock_unreported(claim: Claim) -> list[ViewEvent]:
    """Lock the claim's reveals whose length the page has not reported yet.

    Lock order, kept by every writer so that none waits in a circle (docs/architecture.md):
    claim, its views, the item, today's exposure."""
    return list(ViewEvent.objects.select_for_update(no_key=True).filter(claim=claim, reported=False).order_by("pk"))


def views_close_unreported(views: list[ViewEvent], now) -> None:
    """A reveal whose page never reported its length (its reports were all lost; `views` from
    views_lock_unreported) counts by what the server knows: from the original's response to
    now, at most TSREVIEW_UNREPORTED_VIEW_SECONDS; nobody saw it painted, so it is not a view."""
    for view in views:
        seconds = min((now - view.started_at).total_seconds(), settings.TSREVIEW_UNREPORTED_VIEW_SECONDS)
        view_seconds_record(view=view, seconds=seconds, painted=False)
