"""Signed exports for hash-list owners without an API (IWF, Lantern, StopNCII, an internal bank):
per list, the verified false positives (entries whose matches a person found not apparent CSAM)
and the hashes of newly confirmed items. Never media; for a false positive, the list's own hash
and entry, not the hashes of the (benign) file it matched.

The file is a JSON envelope: {"payload": "<JSON text>", "signature": {"alg": "Ed25519",
"public_key": "<base64>", "value": "<base64>"}}; the signature is over the payload text's UTF-8
bytes exactly, so a verifier needs no canonical JSON (docs/feedback.md shows how).
"""

import base64
import hashlib
import json
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..audit import audit_record
from ..errors import Refused
from ..models import Item, Match
from ..review.decisions import standing_decision

FORMAT = "tsreview-list-export/1"


def signing_key() -> Ed25519PrivateKey:
    """The configured key, or in the embedded default one derived from SECRET_KEY."""
    if settings.TSREVIEW_EXPORT_SIGNING_KEY:
        seed = base64.urlsafe_b64decode(settings.TSREVIEW_EXPORT_SIGNING_KEY + "==")
    elif not settings.PRODUCTION:
        seed = hashlib.sha256(b"tsreview-export-signing:" + settings.SECRET_KEY.encode()).digest()
    else:
        raise Refused({"key": "Exports are not signed yet: set TSREVIEW_EXPORT_SIGNING_KEY."})
    return Ed25519PrivateKey.from_private_bytes(seed[:32])


def public_key_b64() -> str:
    raw = signing_key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def lists_known() -> list[str]:
    return sorted(set(Match.objects.values_list("list_name", flat=True).distinct()))


def _rows(list_name: str, verdict: str, since: datetime | None):
    matches = Match.objects.filter(list_name=list_name, submission__item__state=Item.State.DECIDED,
                                   submission__item__verdict=verdict)
    if since:
        matches = matches.filter(submission__item__decided_at__gte=since)
    return matches.select_related("submission__item").order_by("submission__item__decided_at", "id")


def export_payload(list_name: str, since: datetime | None) -> dict:
    false_positives, confirmed, seen = [], [], set()
    for m in _rows(list_name, Item.Verdict.NOT_CSAM, since):
        decision = standing_decision(m.submission.item)
        false_positives.append({"list_entry_id": m.list_entry_id, "hash_type": m.hash_type, "hash_value": m.hash_value,
                                "distance": m.distance, "reason": decision.reason if decision else "",
                                "decided_at": m.submission.item.decided_at.isoformat()})
    for m in _rows(list_name, Item.Verdict.CONFIRMED, since):
        item = m.submission.item
        if item.pk in seen:
            continue
        seen.add(item.pk)
        confirmed.append({"list_entry_id": m.list_entry_id, "matched_hash_type": m.hash_type,
                          "sha256": item.sha256, "md5": item.md5, "sha1": item.sha1, "pdq": item.pdq or None,
                          "confirmed_at": item.decided_at.isoformat()})
    return {"format": FORMAT, "list": list_name, "generated_at": timezone.now().isoformat(),
            "since": since.isoformat() if since else None, "false_positives": false_positives, "confirmed": confirmed}


def list_export(*, actor, list_name: str, since: datetime | None = None) -> bytes:
    """The signed export of one list. The view checked the lead role. Audited: list.exported
    (counts and the public key; never the hashes)."""
    if list_name not in lists_known():
        raise Refused({"list": f"No matches name the list '{list_name}'."})
    key = signing_key()
    payload = json.dumps(export_payload(list_name, since), sort_keys=True, ensure_ascii=False)
    signature = base64.b64encode(key.sign(payload.encode())).decode()
    envelope = {"payload": payload, "signature": {"alg": "Ed25519", "public_key": public_key_b64(), "value": signature}}
    counts = json.loads(payload)
    with transaction.atomic():
        audit_record(actor=actor, action="list.exported", data={
            "list": list_name, "since": since, "false_positives": len(counts["false_positives"]),
            "confirmed": len(counts["confirmed"]), "public_key": envelope["signature"]["public_key"]})
    return json.dumps(envelope, indent=1).encode()
