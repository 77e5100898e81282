from django.core.management.base import BaseCommand
from django.db import transaction

from reports.audit import audit_record
from reports.intake.storage import media_store


class Command(BaseCommand):
    help = ("Re-encrypt every stored file under the current media key (TSREVIEW_MEDIA_KEY), reading older "
            "ones with TSREVIEW_MEDIA_OLD_KEYS. Runs while the service runs; safe to interrupt and run again.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count what would change, change nothing.")

    def handle(self, *args, dry_run, **options):
        store = media_store()
        rotated = checked = 0
        for name in store.names():
            checked += 1
            if dry_run:
                rotated += not store.is_current(name)
            else:
                rotated += store.rekey(name)
            if checked % 1000 == 0:
                self.stdout.write(f"{checked} files checked, {rotated} re-encrypted")
        if not dry_run:
            with transaction.atomic():
                audit_record(actor=None, action="media.key_rotated",
                             data={"checked": checked, "rotated": rotated, "key_id": store.key_id.hex()})
        verb = "would be re-encrypted" if dry_run else "re-encrypted"
        self.stdout.write(f"{checked} files checked, {rotated} {verb} under key {store.key_id.hex()}")
