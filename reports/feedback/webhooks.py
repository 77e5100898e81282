"""Delivering the outbox (events.py) to scanners: signed POSTs per Standard Webhooks.

Headers webhook-id (the event's stable id), webhook-timestamp (seconds, this attempt) and
webhook-signature: "v1,<base64 HMAC-SHA256(key, f"{id}.{timestamp}.{body}")>" where key is the
base64 part of the scanner's "whsec_" secret; during a rotation's overlap both secrets sign
(space-separated). At least once: an event is marked delivered only after a 2xx, so a crash
in between sends it again with the same id. Per submission, an event waits until the ones
before it are delivered. Failures back off exponentially; after TSREVIEW_WEBHOOK_RETRY_SECONDS
(3 days) an event goes to the dead-letter list, from which a lead replays it.
"""

import base64
import hashlib
import hmac
import http.client
import logging
import secrets
import ssl
import time
import urllib.parse
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from ..audit import audit_record
from ..errors import Refused
from ..jobs import enqueue
from ..models import Scanner, ScannerEvent

log = logging.getLogger(__name__)
SECRET_PREFIX = "whsec_"


def secret_new() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(scanner: Scanner, msg_id: str, timestamp: int, body: str, *, now=None) -> str:
    now = now or timezone.now()
    secrets_in_use = [scanner.webhook_secret]
    if scanner.webhook_secret_previous and scanner.webhook_secret_previous_until and scanner.webhook_secret_previous_until > now:
        secrets_in_use.append(scanner.webhook_secret_previous)
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets_in_use if s)


def scanner_webhook_configure(*, actor, scanner: Scanner, url: str | None = None, rotate: bool = False) -> str | None:
    """Set the callback URL and/or make a new signing secret; returns the new secret (shown
    once by the caller) or None. On rotation the old secret keeps signing as well for
    TSREVIEW_WEBHOOK_ROTATION_OVERLAP_SECONDS. Audited: scanner.webhook_configured (never the secret)."""
    if url is not None and url and not url.startswith(("https://", "http://")):
        raise Refused({"url": "The callback URL must be http:// or https://."})
    with transaction.atomic():
        scanner = Scanner.objects.select_for_update(no_key=True).get(pk=scanner.pk)
        fields, secret = [], None
        if url is not None:
            scanner.callback_url, fields = url, ["callback_url"]
        if rotate or not scanner.webhook_secret:
            secret = secret_new()
            if scanner.webhook_secret:
                scanner.webhook_secret_previous = scanner.webhook_secret
                scanner.webhook_secret_previous_until = timezone.now() + timedelta(
                    seconds=settings.TSREVIEW_WEBHOOK_ROTATION_OVERLAP_SECONDS)
            scanner.webhook_secret = secret
            fields += ["webhook_secret", "webhook_secret_previous", "webhook_secret_previous_until"]
        scanner.save(update_fields=fields)
        audit_record(actor=actor, action="scanner.webhook_configured", subject=scanner,
                     data={"callback_url": scanner.callback_url, "secret_rotated": secret is not None,
                           "previous_valid_until": scanner.webhook_secret_previous_until})
    return secret


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, ... doubling, at most 6 h between attempts (about 20 tries in 3 days)."""
    return timedelta(seconds=min(6 * 3600, 30 * 2 ** max(0, attempts - 1)))


def _due(scanner_id: int, now):
    earlier_open = ScannerEvent.objects.filter(submission=OuterRef("submission"), id__lt=OuterRef("id"),
                                               delivered_at__isnull=True)
    return (ScannerEvent.objects.filter(scanner_id=scanner_id, delivered_at__isnull=True, dead_at__isnull=True)
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
            .exclude(Exists(earlier_open)).order_by("id"))


class Poster:
    """POSTs to one callback URL over one kept-alive connection (reopened after any error).
    http.client follows no redirects: a 3xx is an answer that is not 2xx, retried later."""

    def __init__(self, url: str):
        self.url = urllib.parse.urlsplit(url)
        self.path = (self.url.path or "/") + (f"?{self.url.query}" if self.url.query else "")
        self.conn = None

    def _connect(self):
        timeout = settings.TSREVIEW_WEBHOOK_TIMEOUT
        if self.url.scheme == "https":
            return http.client.HTTPSConnection(self.url.hostname, self.url.port, timeout=timeout,
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=timeout)

    def post(self, scanner: Scanner, event: ScannerEvent) -> str:
        """One attempt; "" on a 2xx, else what went wrong (no body of ours in it)."""
        timestamp = int(time.time())
        headers = {"content-type": "application/json", "user-agent": "tsreview-webhooks/1",
                   "webhook-id": event.event_id, "webhook-timestamp": str(timestamp),
                   "webhook-signature": signature_header(scanner, event.event_id, timestamp, event.body)}
        for reused in (self.conn is not None, False):
            try:
                if self.conn is None:
                    self.conn = self._connect()
                self.conn.request("POST", self.path, body=event.body.encode(), headers=headers)
                response = self.conn.getresponse()
                response.read(64 * 1024)
                if response.will_close:
                    self.close()
                return "" if 200 <= response.status < 300 else f"HTTP {response.status}"
            except (OSError, ValueError, http.client.HTTPException) as exc:
                self.close()
                if not reused:  # a kept-alive connection the server had closed gets one fresh try
                    return f"{exc.__class__.__name__}: {exc}"[:400]
        return "unreachable"

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def events_deliver(*, scanner_id: int, limit: int = 1000, batch: int = 50) -> dict:
    """Send this scanner's due events in order over one connection. Events are taken in batches,
    locked (SKIP LOCKED: two workers never send the same event at once) and recorded as each
    answer comes; a crash before the batch commits sends its events again (at least once)."""
    counts = {"delivered": 0, "failed": 0, "dead": 0}
    scanner = Scanner.objects.filter(pk=scanner_id, is_active=True).exclude(callback_url="").first()
    if scanner is None or not scanner.webhook_secret:
        return counts
    poster = Poster(scanner.callback_url)
    try:
        while sum(counts.values()) < limit:
            with transaction.atomic():
                due = list(_due(scanner_id, timezone.now()).select_for_update(
                    no_key=True, skip_locked=True, of=("self",))[:batch])
                for event in due:
                    error = poster.post(scanner, event)
                    counts[_attempt_record(event, error, timezone.now())] += 1
                    if error and not error.startswith("HTTP "):
                        return counts  # no connection: the endpoint is down; the rest wait for the sweep
            if not due:  # a batch holds one event per submission: its next ones come in the next batch
                break
    finally:
        poster.close()
    return counts


def _attempt_record(event: ScannerEvent, error: str, now) -> str:
    event.attempts += 1
    if not error:
        event.delivered_at, event.last_error, event.next_attempt_at = now, "", None
        event.save(update_fields=["attempts", "delivered_at", "last_error", "next_attempt_at"])
        return "delivered"
    event.last_error = error[:500]
    if now - event.retry_since >= timedelta(seconds=settings.TSREVIEW_WEBHOOK_RETRY_SECONDS):
        event.dead_at, event.next_attempt_at = now, None
        event.save(update_fields=["attempts", "last_error", "dead_at", "next_attempt_at"])
        audit_record(actor=None, action="webhook.dead_lettered", subject=event,
                     data={"event_id": event.event_id, "scanner": event.scanner_id, "attempts": event.attempts,
                           "last_error": event.last_error})
        return "dead"
    event.next_attempt_at = now + backoff(event.attempts)
    event.save(update_fields=["attempts", "last_error", "next_attempt_at"])
    return "failed"


def scanners_with_due_events() -> list[int]:
    now = timezone.now()
    return list(ScannerEvent.objects.filter(delivered_at__isnull=True, dead_at__isnull=True, scanner__is_active=True)
                .exclude(scanner__callback_url="").filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
                .values_list("scanner_id", flat=True).distinct())


def dead_letters(*, limit: int = 500):
    return ScannerEvent.objects.filter(dead_at__isnull=False).select_related("scanner").order_by("dead_at", "id")[:limit]


def events_replay(*, actor, event_ids: list[int]) -> int:
    """A lead puts dead letters back to be sent now (they keep their ids, so a receiver that
    had them after all drops the copy). The view checked the role. Audited: webhook.replayed."""
    with transaction.atomic():
        events = list(ScannerEvent.objects.select_for_update(no_key=True).filter(pk__in=event_ids, dead_at__isnull=False)
                      .order_by("id"))
        if not events:
            raise Refused({"events": "Choose dead letters to replay."})
        now = timezone.now()
        ScannerEvent.objects.filter(pk__in=[e.pk for e in events]).update(dead_at=None, next_attempt_at=now, attempts=0,
                                                                         retry_since=now)
        audit_record(actor=actor, action="webhook.replayed", subject=None,
                     data={"events": [e.event_id for e in events], "scanners": sorted({e.scanner_id for e in events})})
        for scanner_id in sorted({e.scanner_id for e in events}):
            transaction.on_commit(lambda s=scanner_id: enqueue("scanner_events_deliver_task", s))
    return len(events)


def events_after(*, scanner: Scanner, after: str | None, limit: int):
    """A scanner's own events after the one it names (all of them when it names none)."""
    events = ScannerEvent.objects.filter(scanner=scanner)
    if after:
        start = events.filter(event_id=after).values_list("pk", flat=True).first()
        if start is None:
            raise Refused({"after": "No event with this id for this scanner."})
        events = events.filter(pk__gt=start)
    return list(events.order_by("id")[:limit])
