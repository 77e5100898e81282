from django.core.management.base import BaseCommand, CommandError

from reports.audit import audit_verify


class Command(BaseCommand):
    help = ("Link what waits to be linked, then verify the audit log: its keyed chain, its checkpoints "
            "outside the database, and decisions and reveals against their events. Exits non-zero "
            "naming the first broken event.")

    def add_arguments(self, parser):
        parser.add_argument("--no-chain", action="store_true", help="verify only; do not link waiting events first")

    def handle(self, *args, no_chain=False, **options):
        checked, broken, why = audit_verify(chain=not no_chain)
        if broken is not None:
            raise CommandError(f"audit chain broken at event {broken}: {why} ({checked} events before it are intact)")
        self.stdout.write(f"audit chain intact: {checked} events")
