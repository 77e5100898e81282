import hashlib
import random

from cryptography.exceptions import InvalidTag
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from reports.audit import audit_record
from reports.intake.storage import media_store
from reports.models import Item

PIECE = 1024 * 1024


class Command(BaseCommand):
    help = ("Decrypt a random sample of stored originals (or all of them) and compare each with its item's SHA-256: "
            "the check after a restore, a move or a key change. Exits non-zero naming how many failed. Audited as "
            "media.verified.")

    def add_arguments(self, parser):
        parser.add_argument("--sample", type=int, default=100, help="How many originals to check (0: all).")

    def handle(self, *args, sample, **options):
        items = list(Item.objects.filter(purged_at__isnull=True).exclude(original_blob="").values_list("pk", "original_blob", "sha256"))
        if sample and len(items) > sample:
            items = random.sample(items, sample)
        store, failed = media_store(), []
        for pk, name, sha256 in items:
            digest = hashlib.sha256()
            try:
                with store.open(name) as source:
                    while piece := source.read(PIECE):
                        digest.update(piece)
            except (OSError, ValueError, InvalidTag):
                failed.append(pk)
                continue
            if digest.hexdigest() != sha256:
                failed.append(pk)
        with transaction.atomic():
            audit_record(actor=None, action="media.verified", data={"checked": len(items), "failed": failed[:100]})
        self.stdout.write(f"{len(items)} originals checked, {len(items) - len(failed)} match their SHA-256, "
                          f"{len(failed)} failed")
        if failed:
            raise CommandError(f"{len(failed)} originals are missing, do not decrypt or do not match (items {failed[:20]})")
