"""The audit log: append-only, hash-chained, written in the same transaction as the change."""

import hashlib
import json

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from .models import AuditEvent, AuditHead, Scanner

GENESIS = "0" * 64


def _actor(actor):
    if actor is None:
        return "system", "", "system"
    if isinstance(actor, Scanner):
        return "scanner", str(actor.pk), actor.name
    if isinstance(actor, get_user_model()):
        return "user", str(actor.pk), actor.get_username()
    raise TypeError(f"not an actor: {type(actor).__name__}")


def event_digest(prev_hash: str, event: AuditEvent) -> str:
    """The link hash: the previous hash and every field of the event, canonically encoded."""
    body = {
        "id": event.pk,
        "at": event.at.isoformat(),
        "actor": [event.actor_kind, event.actor_id, event.actor_name],
        "action": event.action,
        "subject": [event.subject_kind, event.subject_id],
        "item": event.item_id,
        "data": event.data,
    }
    encoded = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{prev_hash}|{encoded}".encode()).hexdigest()


def audit_record(*, actor, action: str, subject=None, item_id=None, data=None) -> AuditEvent:
    """Append one event. Callers are inside the transaction of the change they record.

    The head row is locked until that transaction commits, so concurrent writers queue up
    here and each link names the one before it; keep the work after this call short.

    Every row lock in tsreview is FOR NO KEY UPDATE (no_key=True): PostgreSQL checks Django's
    deferred foreign keys at commit, after this lock, with KEY SHARE locks that a plain
    FOR UPDATE elsewhere would block — a deadlock. FOR NO KEY UPDATE does not block them.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change")
    kind, actor_id, name = _actor(actor)
    head, _ = AuditHead.objects.select_for_update(no_key=True).get_or_create(pk=1)
    event = AuditEvent(
        id=head.last_id + 1,
        at=timezone.now(),
        actor_kind=kind,
        actor_id=actor_id,
        actor_name=name,
        action=action,
        subject_kind=type(subject).__name__.lower() if subject is not None else "",
        subject_id=str(subject.pk) if subject is not None else "",
        item_id=item_id,
        data=json.loads(json.dumps(data or {}, default=str)),
        prev_hash=head.last_hash,
    )
    event.hash = event_digest(head.last_hash, event)
    event.save(force_insert=True)
    head.last_id, head.last_hash = event.pk, event.hash
    head.save(update_fields=["last_id", "last_hash"])
    return event


def audit_record_many(*, actor, events: list[dict]) -> list[AuditEvent]:
    """Append several events of one change (each a dict of audit_record's action, subject,
    item_id, data) under one lock of the head: three round trips however many events, the
    same chain as as many audit_record calls."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change")
    kind, actor_id, name = _actor(actor)
    head, _ = AuditHead.objects.select_for_update(no_key=True).get_or_create(pk=1)
    rows, last_id, last_hash, now = [], head.last_id, head.last_hash, timezone.now()
    for spec in events:
        subject = spec.get("subject")
        event = AuditEvent(
            id=last_id + 1, at=now, actor_kind=kind, actor_id=actor_id, actor_name=name, action=spec["action"],
            subject_kind=type(subject).__name__.lower() if subject is not None else "",
            subject_id=str(subject.pk) if subject is not None else "",
            item_id=spec.get("item_id"), data=json.loads(json.dumps(spec.get("data") or {}, default=str)),
            prev_hash=last_hash)
        event.hash = event_digest(last_hash, event)
        rows.append(event)
        last_id, last_hash = event.pk, event.hash
    AuditEvent.objects.bulk_create(rows)
    head.last_id, head.last_hash = last_id, last_hash
    head.save(update_fields=["last_id", "last_hash"])
    return rows


def audit_verify(*, batch_size: int = 5000):
    """Walk the chain in order. Returns (events checked, first broken event id or None, why)."""
    prev, expected_id, checked = GENESIS, 1, 0
    rows = AuditEvent.objects.order_by("id").iterator(chunk_size=batch_size)
    for event in rows:
        if event.pk != expected_id:
            return checked, expected_id, "missing event"
        if event.prev_hash != prev or event_digest(prev, event) != event.hash:
            return checked, event.pk, "hash does not match its contents and predecessor"
        prev, expected_id, checked = event.hash, expected_id + 1, checked + 1
    head = AuditHead.objects.filter(pk=1).first()
    if head and (head.last_id != checked or head.last_hash != prev):
        return checked, checked + 1, "events after the last intact one are missing"
    return checked, None, ""
