import hashlib

from cryptography.exceptions import InvalidTag
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from reports.audit import audit_record
from reports.intake.storage import media_store
from reports.models import Item

PIECE = 1024 * 1024


def _sha256(files, name: str) -> str:
    """SHA-256 of a stored file's ciphertext, read a piece at a time."""
    digest = hashlib.sha256()
    with files.open(name) as source:
        while piece := source.read(PIECE):
            digest.update(piece)
    return digest.hexdigest()


def _plain_sha256(store, name: str) -> str:
    digest = hashlib.sha256()
    with store.open(name) as source:
        while piece := source.read(PIECE):
            digest.update(piece)
    return digest.hexdigest()


class Command(BaseCommand):
    help = ("Copy every stored media file from one store to the other (local folder <-> S3 bucket, both as "
            "configured in the settings), as the ciphertext it is, streamed a piece at a time. Each copy is read "
            "back and its SHA-256 compared with the source's; an original is also decrypted from the destination "
            "and compared with its item's SHA-256. Files already at the destination with the same SHA-256 are "
            "skipped, so an interrupted move resumes. The source is left as it was: switch "
            "TSREVIEW_MEDIA_STORAGE, then remove the old copy yourself. Audited as media.moved.")

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="source", choices=["local", "s3"], required=True)
        parser.add_argument("--to", dest="target", choices=["local", "s3"], required=True)

    def handle(self, *args, source, target, **options):
        if source == target:
            raise CommandError("--from and --to name the same store")
        src, dst = media_store(source), media_store(target)
        originals = dict(Item.objects.exclude(original_blob="").values_list("original_blob", "sha256"))
        copied = skipped = checked = 0
        failed = []
        for name in src.names():
            checked += 1
            source_sha = _sha256(src.files, name)
            if dst.files.exists(name) and _sha256(dst.files, name) == source_sha:
                skipped += 1
                continue
            writer = dst.files.writer(name)
            try:
                with src.files.open(name) as reader:
                    while piece := reader.read(PIECE):
                        writer.write(piece)
            except BaseException:
                writer.abort()
                raise
            writer.finish()
            ok = _sha256(dst.files, name) == source_sha
            if ok and name in originals:
                try:
                    ok = _plain_sha256(dst, name) == originals[name]
                except (ValueError, InvalidTag):  # does not decrypt: damaged at the source
                    ok = False
            if not ok:
                dst.files.delete(name)
                failed.append(name)
                continue
            copied += 1
            if checked % 1000 == 0:
                self.stdout.write(f"{checked} files checked, {copied} copied, {skipped} already there")
        with transaction.atomic():
            audit_record(actor=None, action="media.moved",
                         data={"from": source, "to": target, "checked": checked, "copied": copied,
                               "already_there": skipped, "failed": len(failed)})
        self.stdout.write(f"{checked} files checked, {copied} copied and verified, {skipped} already there, "
                          f"{len(failed)} failed")
        if failed:
            raise CommandError(f"{len(failed)} files did not match their SHA-256 after the copy and were not kept "
                               f"at the destination (first: {failed[0]}); the source still has them")
