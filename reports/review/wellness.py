"""Exposure: measured per reviewer and day, capped, and kept within the admin's limits."""

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ..audit import audit_record
from ..models import ExposureDay, ReviewerSettings, WellnessPolicy

SIZES = ["small", "medium", "large"]
# A heartbeat gap longer than this is a pause, not active review.
ACTIVE_GAP = timedelta(seconds=45)


class CapReached(Exception):
    """Today's exposure cap is reached: no new claims and no reveals until tomorrow."""

    message = "You have reached today's exposure limit. Thank you — no more items today."


@dataclass(frozen=True)
class Effective:
    """A reviewer's settings after the policy's limits are applied."""

    blur: int
    greyscale: bool
    reveal_mode: str
    reveal_seconds: int
    size: str


def settings_for(user) -> ReviewerSettings:
    return ReviewerSettings.objects.get_or_create(user=user)[0]


def settings_effective(user, policy: WellnessPolicy | None = None) -> Effective:
    policy = policy or WellnessPolicy.current()
    own = settings_for(user)
    return Effective(
        blur=max(own.blur, policy.min_blur),
        greyscale=own.greyscale or not policy.allow_colour,
        reveal_mode=own.reveal_mode,
        reveal_seconds=max(1, min(own.reveal_seconds, policy.max_reveal_seconds)),
        size=SIZES[min(SIZES.index(own.size), SIZES.index(policy.max_size))],
    )


def settings_update(*, user, changes: dict) -> ReviewerSettings:
    """Save a reviewer's own settings (the form has checked them against the policy).
    Audited as settings.changed with old and new values."""
    with transaction.atomic():
        own = ReviewerSettings.objects.select_for_update(no_key=True).get(pk=settings_for(user).pk)
        old = {name: getattr(own, name) for name in changes}
        if old == changes:
            return own
        for name, value in changes.items():
            setattr(own, name, value)
        own.save(update_fields=list(changes))
        audit_record(actor=user, action="settings.changed", subject=own, data={"old": old, "new": changes})
    return own


def exposure_today(user) -> ExposureDay:
    return ExposureDay.objects.get_or_create(user=user, day=timezone.localdate())[0]


def exposure_peek(user) -> ExposureDay:
    """Today's exposure without writing (for every page's top bar): zeros if none yet."""
    today = timezone.localdate()
    return ExposureDay.objects.filter(user=user, day=today).first() or ExposureDay(user=user, day=today)


def policy_peek() -> WellnessPolicy:
    """The policy without writing: the defaults until an admin saves one."""
    return WellnessPolicy.objects.filter(pk=1).first() or WellnessPolicy(pk=1)


def exposure_add(user, **increments) -> None:
    """Add to today's counters atomically (F expressions: concurrent tabs don't lose counts)."""
    changes = {k: F(k) + v for k, v in increments.items()}
    if not ExposureDay.objects.filter(user=user, day=timezone.localdate()).update(**changes):
        ExposureDay.objects.filter(pk=exposure_today(user).pk).update(**changes)  # the day's first


def activity_record(user) -> ExposureDay:
    """A heartbeat from an open review page: count the time since the last one as active."""
    now = timezone.now()
    with transaction.atomic():
        day = ExposureDay.objects.select_for_update(no_key=True).get(pk=exposure_today(user).pk)
        if day.last_active_at and now - day.last_active_at <= ACTIVE_GAP:
            gained = int((now - day.last_active_at).total_seconds())
            day.active_seconds += gained
            day.active_since_break_seconds += gained
        day.last_active_at = now
        day.save(update_fields=["active_seconds", "active_since_break_seconds", "last_active_at"])
    return day


def break_taken(user) -> None:
    """The reviewer took the break they were offered. Audited."""
    day = exposure_today(user)
    with transaction.atomic():
        audit_record(actor=user, action="wellness.break_taken", subject=day,
                     data={"active_since_break_seconds": day.active_since_break_seconds})
        ExposureDay.objects.filter(pk=day.pk).update(active_since_break_seconds=0)


def break_due(day: ExposureDay, policy: WellnessPolicy) -> bool:
    return day.active_since_break_seconds >= policy.break_after_minutes * 60


def cap_reached(day: ExposureDay, policy: WellnessPolicy) -> bool:
    return day.unblurred_seconds >= policy.daily_cap_seconds or day.items >= policy.daily_cap_items


def cap_share(day: ExposureDay, policy: WellnessPolicy) -> float:
    """How much of today's cap is used, 0..1 (the larger of time and items)."""
    return min(1.0, max(day.unblurred_seconds / max(1, policy.daily_cap_seconds), day.items / max(1, policy.daily_cap_items)))
