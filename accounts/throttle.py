"""Sign-in throttling: an atomic counter per name and per address, taken before the password is
checked, in the shared cache (Redis via CACHE_URL in production; the per-process memory cache
in the embedded demo). Windows are fixed (TSREVIEW_LOGIN_LOCKOUT_MINUTES long, by the clock).

Each attempt takes a slot first (an atomic INCR). An attempt past a limit gives its slot back
and is refused without a password check; a successful sign-in gives its slot back too, so a
window's slots count the attempts that were checked and failed, or are being checked. However
many arrive at once, at most the limit are ever checked in a window."""

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from reports.counters import counter_take

PREFIX = "tsreview:signin"


def _window() -> tuple[int, int]:
    """This window's number, and the seconds left in it."""
    size = settings.TSREVIEW_LOGIN_LOCKOUT_MINUTES * 60
    now = timezone.now().timestamp()
    return int(now // size), max(1, int(size - now % size))


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]  # no names or addresses in cache keys


def _decr(key: str) -> None:
    try:
        cache.decr(key)
    except ValueError:
        pass


@dataclass
class Slot:
    keys: list[str]

    def release(self) -> None:
        """Give the slot back (the attempt succeeded, or was refused)."""
        for key in self.keys:
            _decr(key)


def attempt_take(*, username: str, ip: str) -> Slot | None:
    """A slot to check one sign-in attempt, or None when the name or the address is over its
    limit in this window (then nothing may be checked)."""
    window, left = _window()
    ttl = left + 60
    taken = []
    for kind, value, limit in (("user", username, settings.TSREVIEW_LOGIN_FAILURES_PER_USER),
                               ("ip", ip, settings.TSREVIEW_LOGIN_FAILURES_PER_IP)):
        key = f"{PREFIX}:{kind}:{_digest(value)}:{window}"
        count = counter_take(key, ttl)
        taken.append(key)
        if count > limit:
            Slot(taken).release()
            return None
    return Slot(taken)


def throttled_burst_starts(*, username: str, ip: str) -> bool:
    """True for the first refused attempt of this name from this address in this window: that
    one is audited; the rest of the burst are counted here, not written one by one."""
    window, left = _window()
    key = f"{PREFIX}:throttled:{_digest(f'{username}|{ip}')}:{window}"
    first = cache.add(key, 0, left + 60)
    try:
        cache.incr(key)
    except ValueError:
        pass
    return first


def minutes_left() -> int:
    return -(-_window()[1] // 60)
