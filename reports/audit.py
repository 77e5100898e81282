"""The audit log: append-only, keyed and anchored (DESIGN §6, docs/security.md).

Writing: `audit_record` inserts one event in the transaction of the change it records. Its id
comes from the table's sequence, so writers never queue on one row.

Chaining: `audit_chain`, one step at a time (a Celery beat task every few seconds; in-process
on SQLite, where writers are serialised anyway; and first thing in `audit_verify`), links the
committed events in id order in AuditLink: each link is HMAC-SHA256, under the audit key that
is kept outside the database, of the previous link and the event. A number taken by a
transaction that rolled back leaves a hole; once it has been seen missing for a grace period
below a committed event, the chainer fills it with an `audit.gap` event (an insert that waits
for, and loses to, a writer still holding that number), so the ids run 1, 2, 3 … with nothing
missing, and a deleted event is a hole that verify names.

Anchoring: `audit_checkpoint` appends the chain's head (seq, mac), signed with the key, to a
store outside the database (a file on append-only storage by default) at an interval. A log
that no longer reaches a checkpoint was rewound or rewritten.

Verifying: `audit_verify` fails on an empty log, a hole, an event that does not match its
link, a link made under an unknown key, an event left unlinked beyond the window, a head behind
a checkpoint, and a Decision or ViewEvent that does not match the event written with it.
"""

import base64
import functools
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError, connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from .keyfiles import key_text
from .models import AuditEvent, AuditLink, Decision, Scanner, ViewEvent

logger = logging.getLogger(__name__)
GENESIS = "0" * 64
GAP = "audit.gap"
CHAIN_LOCK = 0x74737276  # the chaining step's advisory lock ("tsrv"); writers never take it
# Subjects whose rows verify_audit compares with the event written with them.
CROSS_CHECKED = {"decision": Decision, "viewevent": ViewEvent}


class AuditTampered(Exception):
    """The log no longer agrees with its links or its checkpoints; the chainer stops."""


# --- Keys ------------------------------------------------------------------------------------

def _parse_key(text: str) -> tuple[str, bytes]:
    """"ID:KEY" (or a bare KEY, named by its fingerprint): KEY is 32 bytes, urlsafe base64."""
    key_id, _, encoded = text.strip().rpartition(":")
    key = base64.urlsafe_b64decode(encoded.strip())
    if len(key) != 32:
        raise ImproperlyConfigured("audit keys must be 32 bytes, urlsafe base64 (ID:KEY)")
    return key_id.strip() or "k" + hashlib.sha256(b"tsreview-audit-key|" + key).hexdigest()[:8], key


def _load_key() -> str:
    return key_text(settings.TSREVIEW_AUDIT_KEY, settings.TSREVIEW_AUDIT_KEY_FILE_DEFAULT,
                    lambda: "local1:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(), "TSREVIEW_AUDIT_KEY")


@functools.cache
def _keys(current: str, old: str) -> tuple[str, dict[str, bytes]]:
    key_id, key = _parse_key(current)
    keys = dict(_parse_key(k) for k in old.split(",") if k.strip())
    keys[key_id] = key
    return key_id, keys


def audit_keys() -> tuple[str, dict[str, bytes]]:
    """The current key's id, and every key (current and old) by id."""
    return _keys(_load_key(), settings.TSREVIEW_AUDIT_OLD_KEYS)


# --- Writing ---------------------------------------------------------------------------------

def _actor(actor):
    if actor is None:
        return "system", "", "system"
    if isinstance(actor, Scanner):
        return "scanner", str(actor.pk), actor.name
    if isinstance(actor, get_user_model()):
        return "user", str(actor.pk), actor.get_username()
    raise TypeError(f"not an actor: {type(actor).__name__}")


def _plain(value):
    return value.isoformat() if isinstance(value, datetime) else str(value)


def row_digest(values: dict, fields: list[str]) -> str:
    encoded = json.dumps([values.get(f) for f in fields], separators=(",", ":"), default=_plain)
    return hashlib.sha256(encoded.encode()).hexdigest()


def _subject_row(subject) -> dict | None:
    """For a cross-checked subject: its row as stored now (read back, so that the digest is of
    what the database holds), as the field names and their SHA-256."""
    model = CROSS_CHECKED.get(type(subject).__name__.lower())
    if model is None or not isinstance(subject, model):
        return None
    fields = sorted(f.attname for f in model._meta.concrete_fields)
    values = model.objects.filter(pk=subject.pk).values(*fields).first() or {}
    return {"fields": fields, "sha256": row_digest(values, fields)}


def _inline() -> bool:
    """SQLite serialises writers: link each event as it is written, in its own transaction."""
    return connection.vendor == "sqlite"


def audit_record(*, actor, action: str, subject=None, item_id=None, data=None) -> AuditEvent:
    """Append one event. Callers are inside the transaction of the change they record.

    One INSERT: no row is locked, so writers do not wait for each other here. The chaining step
    links the event once its transaction has committed."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change")
    kind, actor_id, name = _actor(actor)
    event = AuditEvent.objects.create(
        at=timezone.now(),
        actor_kind=kind,
        actor_id=actor_id,
        actor_name=name,
        action=action,
        subject_kind=type(subject).__name__.lower() if subject is not None else "",
        subject_id=str(subject.pk) if subject is not None else "",
        item_id=item_id,
        data=json.loads(json.dumps(data or {}, default=str)),
        subject_row=_subject_row(subject) if subject is not None else None,
    )
    if _inline():
        try:
            audit_chain()
        except AuditTampered as exc:  # the change goes on; the event waits, and verify_audit says why
            logger.error("audit chain not extended: %s", exc)
    return event


def audit_record_many(*, actor, events: list[dict]) -> list[AuditEvent]:
    """Append several events of one change (each a dict of audit_record's action, subject,
    item_id, data) in one INSERT: the same events as as many audit_record calls."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change")
    kind, actor_id, name = _actor(actor)
    now, rows = timezone.now(), []
    for spec in events:
        subject = spec.get("subject")
        rows.append(AuditEvent(
            at=now, actor_kind=kind, actor_id=actor_id, actor_name=name, action=spec["action"],
            subject_kind=type(subject).__name__.lower() if subject is not None else "",
            subject_id=str(subject.pk) if subject is not None else "",
            item_id=spec.get("item_id"), data=json.loads(json.dumps(spec.get("data") or {}, default=str)),
            subject_row=_subject_row(subject) if subject is not None else None))
    rows = AuditEvent.objects.bulk_create(rows)
    if _inline():
        try:
            audit_chain()
        except AuditTampered as exc:
            logger.error("audit chain not extended: %s", exc)
    return rows


# --- Links -----------------------------------------------------------------------------------

def event_body(event: AuditEvent) -> bytes:
    """Every field of the event, canonically encoded."""
    body = {
        "id": event.pk,
        "at": event.at.isoformat(),
        "actor": [event.actor_kind, event.actor_id, event.actor_name],
        "action": event.action,
        "subject": [event.subject_kind, event.subject_id],
        "item": event.item_id,
        "data": event.data,
        "row": event.subject_row,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def link_mac(key: bytes, prev_mac: str, event: AuditEvent) -> str:
    return hmac.new(key, prev_mac.encode() + b"|" + event_body(event), hashlib.sha256).hexdigest()


def _head() -> tuple[int, str]:
    head = AuditLink.objects.order_by("-seq").first()
    return (head.seq, head.mac) if head else (0, GENESIS)


def _check_against_checkpoint(seq: int) -> None:
    """Before extending the chain: the links still reach the newest checkpoint, unchanged."""
    latest = checkpoint_store().latest() if settings.TSREVIEW_AUDIT_CHECKPOINTS else None
    if latest is None:
        return
    if latest["seq"] > seq:
        raise AuditTampered(f"the chain's head ({seq}) is behind checkpoint {latest['seq']}: events were removed")
    link = AuditLink.objects.filter(seq=latest["seq"]).first()
    if link is None or link.mac != latest["mac"]:
        raise AuditTampered(f"link {latest['seq']} no longer matches its checkpoint: the chain was rewritten")


def _chain_run(limit: int) -> tuple[int, list[int]]:
    """Link the committed events that follow the head without a hole. Returns how many were
    linked, and the missing numbers before the next committed event (if any)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:  # one chainer at a time; writers never wait for it
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK])
        seq, prev = _head()
        _check_against_checkpoint(seq)
        key_id, keys = audit_keys()
        key, now, links, missing = keys[key_id], timezone.now(), [], []
        for event in AuditEvent.objects.filter(id__gt=seq).order_by("id")[:limit]:
            if event.pk != seq + 1:
                missing = list(range(seq + 1, event.pk))
                break
            prev = link_mac(key, prev, event)
            links.append(AuditLink(seq=event.pk, key_id=key_id, mac=prev, linked_at=now))
            seq = event.pk
        AuditLink.objects.bulk_create(links)
    return len(links), missing


# (when, the sequence's last value) as this process's chainer saw them: a number handed out
# before a sighting older than the grace period belongs to a writer that is past its INSERT.
_SEEN: list[tuple[float, int]] = []


def _handed_out_long_ago() -> int:
    """The highest number handed out at least TSREVIEW_AUDIT_GAP_GRACE_SECONDS ago (waiting out
    the grace once if this process has not looked before)."""
    grace = settings.TSREVIEW_AUDIT_GAP_GRACE_SECONDS
    with connection.cursor() as cursor:
        cursor.execute("SELECT last_value FROM " + _sequence())
        last = cursor.fetchone()[0]
    now = time.monotonic()
    _SEEN.append((now, last))
    old = [seen for at, seen in _SEEN if at <= now - grace]
    del _SEEN[:max(0, len(_SEEN) - 100)]
    if old:
        return max(old)
    time.sleep(grace)
    return last


@functools.cache
def _sequence() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence('reports_auditevent', 'id')")
        return cursor.fetchone()[0]


def _gaps_seal(numbers: list[int]) -> bool:
    """Fill numbers that no committed event holds with audit.gap events. Only numbers handed out
    longer ago than the grace period (a writer takes its number inside its INSERT); a writer
    still holding one (inserted, not yet committed) makes the insert wait, and after a short
    timeout the chainer gives up until its next run. Returns whether every number is now taken."""
    if connection.vendor == "postgresql" and max(numbers) > _handed_out_long_ago():
        return False  # young numbers: the next run looks again
    now = timezone.now()
    gaps = [AuditEvent(id=n, at=now, actor_kind="system", actor_name="system", action=GAP,
                       data={"why": "no event was committed with this number"}) for n in numbers]
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT set_config('lock_timeout', '2s', true)")
            AuditEvent.objects.bulk_create(gaps, ignore_conflicts=True)
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT set_config('lock_timeout', %s, true)", [_session_lock_timeout()])
    except OperationalError:  # a writer still holds one of the numbers: its transaction is open
        return False
    return True


def _session_lock_timeout() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reset_val FROM pg_settings WHERE name = 'lock_timeout'")
        return cursor.fetchone()[0]


def audit_chain(*, limit: int = 10_000) -> int:
    """The single chaining step: link every event that can be linked now, filling rolled-back
    numbers with gap events. Returns the number of links made. Raises AuditTampered (and links
    nothing) when the log no longer reaches its newest checkpoint."""
    made = 0
    for _ in range(1000):
        linked, missing = _chain_run(limit)
        made += linked
        if not missing and linked < limit:
            break
        if missing and not _gaps_seal(missing):
            break
    transaction.on_commit(_checkpoint_when_due)
    return made


def _checkpoint_when_due() -> None:
    """After the links commit. A store that cannot be written is logged, never a failed request
    (verify_audit and the lead's page show how old the newest checkpoint is)."""
    try:
        audit_checkpoint(force=False)
    except Exception:
        logger.exception("audit checkpoint not written")


# --- Checkpoints -----------------------------------------------------------------------------

class FileCheckpointStore:
    """Checkpoints as JSON lines appended to one file. Put it where the database's users cannot
    rewrite it: another machine's mount, a file with the append-only attribute (chattr +a), a
    WORM volume. Another store (an object store with object lock) is a class with the same
    three methods, named by TSREVIEW_AUDIT_CHECKPOINT_STORE."""

    def __init__(self, location: str):
        self.path = Path(location)

    def append(self, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps(record, sort_keys=True) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def all(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def latest(self) -> dict | None:
        if not self.path.exists():
            return None
        with open(self.path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 4096))
            lines = [line for line in fh.read().splitlines() if line.strip()]
        return json.loads(lines[-1]) if lines else None


def checkpoint_store():
    if not settings.TSREVIEW_AUDIT_CHECKPOINTS:
        raise ImproperlyConfigured("TSREVIEW_AUDIT_CHECKPOINTS is not set")
    return import_string(settings.TSREVIEW_AUDIT_CHECKPOINT_STORE)(settings.TSREVIEW_AUDIT_CHECKPOINTS)


def _checkpoint_message(record: dict) -> bytes:
    return f"tsreview-audit-checkpoint|{record['seq']}|{record['mac']}|{record['at']}|{record['key_id']}".encode()


def checkpoint_valid(record: dict, keys: dict[str, bytes]) -> bool:
    key = keys.get(record.get("key_id", ""))
    if key is None:
        return False
    expected = hmac.new(key, _checkpoint_message(record), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, str(record.get("sig", "")))


def audit_checkpoint(*, force: bool = True) -> dict | None:
    """Append the chain's head, signed, to the checkpoint store: always when forced, otherwise
    when the newest checkpoint is older than TSREVIEW_AUDIT_CHECKPOINT_SECONDS and the head has
    moved. Returns the checkpoint written, if one was."""
    seq, mac = _head()
    if seq == 0:
        return None
    store = checkpoint_store()
    latest, now = store.latest(), timezone.now()
    if latest and latest["seq"] >= seq:
        return None  # nothing new (or the log is behind it: verify_audit says so)
    if not force and latest and datetime.fromisoformat(latest["at"]) > now - timedelta(
            seconds=settings.TSREVIEW_AUDIT_CHECKPOINT_SECONDS):
        return None
    key_id, keys = audit_keys()
    record = {"seq": seq, "mac": mac, "at": now.isoformat(), "key_id": key_id}
    record["sig"] = hmac.new(keys[key_id], _checkpoint_message(record), hashlib.sha256).hexdigest()
    store.append(record)
    return record


# --- Verifying -------------------------------------------------------------------------------

def audit_status() -> dict:
    """What a lead sees: the head, what waits to be linked, and the newest checkpoint."""
    seq, _ = _head()
    head = AuditLink.objects.filter(seq=seq).first()
    waiting = AuditEvent.objects.filter(id__gt=seq)
    latest = checkpoint_store().latest() if settings.TSREVIEW_AUDIT_CHECKPOINTS else None
    _, keys = audit_keys()
    return {"head": head, "waiting": waiting.count(), "oldest_waiting": waiting.order_by("id").first(),
            "checkpoint": latest, "checkpoint_valid": bool(latest) and checkpoint_valid(latest, keys),
            "checkpoint_at": datetime.fromisoformat(latest["at"]) if latest else None}


def audit_verify(*, batch_size: int = 5000, chain: bool = True):
    """Chain what can be chained (unless chain=False), then check everything. Returns (events
    checked, the first broken event id or None, why); an empty log is broken at 0."""
    if chain:
        try:
            audit_chain()
            audit_checkpoint(force=False)
        except AuditTampered:
            pass  # the walk below says where
    _, keys = audit_keys()
    checkpoints = checkpoint_store().all() if settings.TSREVIEW_AUDIT_CHECKPOINTS else []
    for record in checkpoints:
        if not checkpoint_valid(record, keys):
            return 0, record.get("seq"), "a checkpoint's signature does not verify (forged, or its key is gone)"
    anchored = {record["seq"]: record for record in checkpoints}
    if not AuditEvent.objects.exists():
        return 0, 0, "the log is empty: no events at all (a deleted log looks like this)"

    window = timezone.now() - timedelta(seconds=settings.TSREVIEW_AUDIT_CHAIN_WINDOW_SECONDS)
    links = AuditLink.objects.order_by("seq").values_list("seq", "key_id", "mac").iterator(chunk_size=batch_size)
    link = next(links, None)  # (seq, key id, mac)
    prev, checked, linked, rows = GENESIS, 0, 0, {}
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=batch_size):
        if event.pk != checked + 1:
            return checked, checked + 1, "missing event (numbers are never skipped: a rolled-back one is a gap event)"
        if event.subject_row and event.subject_kind in CROSS_CHECKED:
            rows[(event.subject_kind, event.subject_id)] = (event.pk, event.subject_row)
        if link is None or link[0] != event.pk:
            if link is not None:
                return checked, event.pk, "its link is missing (removed) while later events are linked"
            if event.at < window:
                return checked, event.pk, ("not linked within the chaining window: the chain stalled, or its links "
                                           "were removed")
            checked += 1  # waiting to be linked, within the window
            continue
        _, key_id, mac = link
        key = keys.get(key_id)
        if key is None:
            return checked, event.pk, f"linked under key {key_id!r}, which is not configured"
        if not hmac.compare_digest(link_mac(key, prev, event), mac):
            return checked, event.pk, "the event does not match its link (altered, or the chain rewritten)"
        record = anchored.get(event.pk)
        if record and record["mac"] != mac:
            return checked, event.pk, f"the link no longer matches the checkpoint of {record['at']} (the chain was rewritten)"
        prev, checked, linked, link = mac, checked + 1, event.pk, next(links, None)
    if link is not None:
        return checked, link[0], "missing event (it was linked, then removed)"
    beyond = max((s for s in anchored if s > linked), default=None)
    if beyond is not None:
        return checked, linked + 1, (f"the chain ends at {linked} but was checkpointed at {beyond} on "
                                     f"{anchored[beyond]['at']}: events or links were removed and the head moved back")
    return _cross_check(rows, checked)


def _cross_check(rows: dict, checked: int):
    """Every Decision and ViewEvent matches the event written with it (its latest one)."""
    for kind, model in CROSS_CHECKED.items():
        for values in model.objects.values().iterator(chunk_size=5000):
            found = rows.get((kind, str(values["id"])))
            if found is None:
                return checked, 0, f"{kind} {values['id']} has no audit event (written behind the app's back)"
            event_id, row = found
            if row_digest(values, row["fields"]) != row["sha256"]:
                return checked, event_id, f"{kind} {values['id']} no longer matches its audit event (rewritten)"
    return checked, None, ""
