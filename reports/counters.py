"""Counters in the shared cache (Redis via CACHE_URL in production; the per-process memory
cache in the embedded demo): the sign-in limits (accounts/throttle.py) and the scanner rate
(reports/api/throttle.py). One atomic increment each, never read, changed and written back."""

from django.core.cache import cache


def counter_take(key: str, ttl: int) -> int:
    """Add one to a counter, made at 0 if absent; the new count."""
    try:
        return cache.incr(key)
    except ValueError:  # absent (the first of a window) or just expired
        cache.add(key, 0, ttl)  # SET NX: if two arrive together, one makes it
        return cache.incr(key)
