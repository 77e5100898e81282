"""Intake: a scanner's push becomes a stored, hashed, encrypted item waiting for review."""

from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models.constants import OnConflict

from ..audit import audit_record, audit_record_many
from ..errors import Refused
from ..events import submission_events
from ..jobs import enqueue
from ..models import Item, Match, Scanner, ScannerEvent, Submission
from .decode import video_inspect_limited
from .jsontext import text_errors
from .media import ImageFacts, MediaRejected, image_inspect
from .provenance import MetadataInput, flatten_errors, provenance_merge, to_json
from .quarantine import item_demote_if_quarantined
from .storage import media_store
from .upload import StoredUpload
from .video import is_video, video_inspect


class ExternalIdConflict(Exception):
    """The scanner already used this external_id for different bytes."""


@dataclass
class IntakeResult:
    submission: Submission
    created: bool


def metadata_validate(document) -> dict:
    """A push's metadata document, strictly checked (DESIGN §3). Refused names each bad
    field as "metadata.<path>"."""
    if not isinstance(document, dict):
        raise Refused({"metadata": ["Must be a JSON object."]})
    unsafe = text_errors(document, "metadata")  # nesting limit; text a report (XML) could not carry
    if unsafe:
        raise Refused(unsafe)
    validator = MetadataInput(data=document)
    if not validator.is_valid():
        raise Refused(flatten_errors(validator.errors, "metadata"))
    return validator.validated_data


def submission_push(*, scanner: Scanner, document, data: bytes | StoredUpload | None, claimed_type: str = "") -> IntakeResult:
    """One push as a scanner sends it: the metadata document and the file, as bytes or as an
    upload already streamed into the encrypted store (the API's way). Checks the metadata
    (Refused), the bytes (MediaRejected: type, size, pixels, frames; a video's duration, frame
    rate and streams too; the type comes from the bytes), then stores it with
    submission_create. The API, the demo and the tests all push through here."""
    metadata = metadata_validate(document)
    if data is None:
        raise Refused({"file": ["This part is required."]})
    if isinstance(data, StoredUpload):
        return _push_stored(scanner, metadata, data, claimed_type)
    if len(data) > settings.TSREVIEW_MAX_UPLOAD_BYTES:
        raise MediaRejected(413, f"Larger than {settings.TSREVIEW_MAX_UPLOAD_BYTES} bytes.")
    inspect = video_inspect if is_video(data) else image_inspect
    facts = inspect(data, claimed_type=claimed_type)
    return submission_create(scanner=scanner, metadata=metadata, data=data, facts=facts)


def _push_stored(scanner: Scanner, metadata: dict, upload: StoredUpload, claimed_type: str) -> IntakeResult:
    """A video is inspected where it is stored, read chunk by chunk, by a child process under
    the decoding limits (intake.decode: a file built to exhaust the demuxer costs that child, not
    this web worker); a picture (small by the upload limit) is verified like any other from the
    copy kept in memory as it arrived."""
    if is_video(upload.head):
        upload.plain = None  # a video is read from the store, chunk by chunk
        facts = video_inspect_limited(upload.blob, head=upload.head, size=upload.size, digests=upload.digests,
                                      claimed_type=claimed_type)
    else:
        if upload.size > settings.TSREVIEW_MAX_UPLOAD_BYTES:
            raise MediaRejected(413, f"Larger than {settings.TSREVIEW_MAX_UPLOAD_BYTES} bytes.")
        # Held in memory as it arrived (it is within the picture limit), hashed then too.
        data, upload.plain = bytes(upload.plain), None
        facts = image_inspect(data, claimed_type=claimed_type, digests=upload.digests)
    return submission_create(scanner=scanner, metadata=metadata, data=None, facts=facts, stored=upload)


def _replay(scanner: Scanner, external_id: str, sha256: str) -> Submission | None:
    existing = Submission.objects.select_related("item").filter(scanner=scanner, external_id=external_id).first()
    if existing and existing.item.sha256 != sha256:
        raise ExternalIdConflict(external_id)
    return existing


def submission_create(*, scanner: Scanner, metadata: dict, data: bytes | None, facts: ImageFacts,
                      stored: StoredUpload | None = None) -> IntakeResult:
    """Store one verified push. The caller has authenticated the scanner and verified the bytes.

    A replay of (scanner, external_id) with the same bytes returns the earlier submission and
    stores nothing; with other bytes it raises ExternalIdConflict. New bytes are encrypted and
    written before the transaction (or were, as they arrived: `stored`) and removed again if it
    does not commit or the item already had them. Audited:
    item.created (new bytes) and submission.created.
    """
    existing = _replay(scanner, metadata["external_id"], facts.sha256)
    if existing:
        return IntakeResult(existing, created=False)
    if stored is not None:
        blob, stored.kept = stored.blob, True  # from here on, this function keeps or removes it
    else:
        known = Item.objects.filter(sha256=facts.sha256, purged_at__isnull=True).exists()
        blob = "" if known else media_store().put(data)
    restored = False
    try:
        with transaction.atomic():
            item, item_created = _item_get_or_create(facts, blob)
            if not item_created and item.purged_at is not None and not blob and data is not None:
                # Purged between the check above and this lock (a retention run): these bytes are
                # the only copy now, so they are stored after all, under the item's lock.
                blob = media_store().put(data)
            restored = not item_created and item.purged_at is not None and bool(blob)
            if restored:
                _item_restore(scanner, item, blob)
            submission = _submission_insert(scanner, metadata, item, duplicate=not item_created)
            if not item_created and not restored:
                _sighting_told(item, submission)
            events = [{"action": "item.created", "subject": item, "item_id": item.pk,
                       "data": {"mime_type": item.mime_type, "size_bytes": item.size_bytes}}] if item_created else []
            events.append({"action": "submission.created", "subject": submission, "item_id": item.pk,
                           "data": {"external_id": submission.external_id, "duplicate": submission.duplicate}})
            audit_record_many(actor=scanner, events=events)  # one lock of the chain's head for both
            if item_created or restored:
                transaction.on_commit(lambda: enqueue("item_previews_task", item.pk))
    except IntegrityError:
        # A concurrent replay of the same external_id won the race: answer as a replay.
        media_store().delete(blob)
        existing = _replay(scanner, metadata["external_id"], facts.sha256)
        if existing is None:
            raise
        return IntakeResult(existing, created=False)
    except BaseException:
        media_store().delete(blob)
        raise
    if not item_created and not restored:
        media_store().delete(blob)  # another push stored the same bytes first
    return IntakeResult(submission, created=True)


def _sighting_told(item: Item, submission: Submission) -> None:
    """A new sighting of a known item: its scanner hears where the item already is (queued, or
    its standing verdict), and it waits below others if it matches a quarantined entry. The
    item is locked (by _item_get_or_create). A scanner whose first push this is, of bytes
    another scanner pushed before, hears "queued", as its status says: what was decided before
    its push is not its to learn (issue 13, finding 7)."""
    foreign = not Submission.objects.filter(item=item, scanner_id=submission.scanner_id).exclude(pk=submission.pk).exists()
    if foreign and item.state != Item.State.NEW:
        submission_events(submissions=[submission], type=ScannerEvent.Type.QUEUED)
    elif item.state in (Item.State.QUEUED, Item.State.CLUSTERED):
        submission_events(submissions=[submission], type=ScannerEvent.Type.QUEUED)
    elif item.state == Item.State.DECIDED and item.verdict == Item.Verdict.CONFIRMED:
        submission_events(submissions=[submission], type=ScannerEvent.Type.CONFIRMED)
    elif item.state == Item.State.DECIDED and item.verdict == Item.Verdict.NOT_CSAM:
        submission_events(submissions=[submission], type=ScannerEvent.Type.NOT_CONFIRMED, reason=item.verdict_reason)
    if item.state not in (Item.State.NEW, Item.State.DECIDED):
        item_demote_if_quarantined(item)


def _item_restore(scanner: Scanner, item: Item, blob: str) -> None:
    """The bytes of an item whose media was purged arrive again (a new sighting): keep them,
    so the new sighting can be reviewed history and all, and reported. Audited: item.restored."""
    item.original_blob, item.purged_at, item.previews = blob, None, {}
    item.save(update_fields=["original_blob", "purged_at", "previews"])
    audit_record(actor=scanner, action="item.restored", subject=item, item_id=item.pk,
                 data={"why": "the same bytes were pushed again after their media was purged"})


def _item_get_or_create(facts: ImageFacts, blob: str) -> tuple[Item, bool]:
    defaults = {
        "md5": facts.md5, "sha1": facts.sha1, "pdq": facts.pdq, "pdq_quality": facts.pdq_quality,
        "mime_type": facts.mime_type, "size_bytes": facts.size_bytes, "width": facts.width, "height": facts.height,
        "frames": facts.frames, "duration_seconds": facts.duration, "original_blob": blob,
    }
    # New bytes are inserted in one statement that does nothing if the bytes are known
    # (INSERT ... ON CONFLICT (sha256) DO NOTHING RETURNING id): one round trip, no savepoint.
    # A known item is locked here, first, as every other writer of an item does (previews,
    # claims, decisions). Unlocked, the submission's foreign-key check, deferred to COMMIT, would
    # wait for the item while this transaction held what it wrote before: with the audit head of
    # the earlier design that was a deadlock with the item's previews task.
    if blob:
        item = Item(sha256=facts.sha256, **defaults)
        fields = [f for f in Item._meta.concrete_fields if not f.primary_key]
        rows = Item.objects._insert([item], fields=fields, returning_fields=[Item._meta.pk],
                                    on_conflict=OnConflict.IGNORE)
        if rows and rows[0]:
            item.pk = rows[0][0]
            item._state.adding, item._state.db = False, Item.objects.db
            return item, True
    existing = Item.objects.select_for_update(no_key=True).filter(sha256=facts.sha256).first()
    if existing is None:
        raise IntegrityError("item vanished between the check and the insert")
    return existing, False


def _submission_insert(scanner, metadata, item, *, duplicate) -> Submission:
    provenance = to_json(metadata["provenance"])
    submission = Submission.objects.create(
        scanner=scanner,
        external_id=metadata["external_id"],
        item=item,
        duplicate=duplicate,
        observed_at=metadata["observed_at"],
        source_type=provenance["source_type"],
        provenance=provenance,
    )
    matches = Match.objects.bulk_create(
        Match(
            submission=submission,
            hash_type=m["hash_type"],
            hash_value=m["hash_value"].lower(),
            list_name=m["list"],
            list_entry_id=m.get("list_entry_id") or "",
            distance=m.get("distance"),
            threshold=m.get("threshold"),
            label=m.get("label") or "",
        )
        for m in metadata["matches"]
    )
    # The answer shows the submission with its matches: they are these (saves reading them back).
    submission._prefetched_objects_cache = {"matches": matches}
    return submission


def submission_provenance_update(*, scanner: Scanner, submission: Submission, update: dict) -> Submission:
    """Merge later provenance into a scanner's own submission (the caller fetched it by owner).

    Audited as submission.provenance_updated with the old and new values."""
    with transaction.atomic():
        submission = Submission.objects.select_for_update(no_key=True).get(pk=submission.pk)
        old = submission.provenance
        new = provenance_merge(old, to_json(update))
        if new != old:
            submission.provenance = new
            submission.source_type = new["source_type"]
            submission.save(update_fields=["provenance", "source_type", "updated_at"])
            audit_record(actor=scanner, action="submission.provenance_updated", subject=submission,
                         item_id=submission.item_id, data={"old": old, "new": new})
    return submission


def item_sightings(item: Item):
    """The item's sightings with their scanner and matches, oldest first."""
    return item.submissions.select_related("scanner").prefetch_related("matches").order_by("created_at")
