"""The scanner rate limit (TSREVIEW_SCANNER_RATE, per scanner, across every web process and
node): DRF's scoped rate, counted by one atomic counter per fixed window in the shared cache.

DRF's own throttle keeps a list of every request's time, read whole, changed and written back
by each request: workers that read it at the same moment each add one and the last write wins,
so parallel pushes went over the limit, and at the default 6000/min the list (up to 6000 times)
went to Redis and back on every push. A counter is one increment, and however many arrive at
once, only the limit's worth in a window get through. A window is fixed by the clock, so a
scanner may send up to twice the rate across a window's end."""

from rest_framework.throttling import ScopedRateThrottle

from ..counters import counter_take


def window(duration: int, now: float) -> tuple[int, float]:
    """The window's number, and the seconds left in it."""
    return int(now // duration), duration - now % duration


class ScannerRateThrottle(ScopedRateThrottle):
    def allow_request(self, request, view):
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        key = self.get_cache_key(request, view) if self.num_requests is not None else None
        if key is None:
            return True
        number, self.left = window(self.duration, self.timer())
        return counter_take(f"{key}:{number}", ttl=self.duration + 60) <= self.num_requests

    def wait(self):
        return self.left
