from django.core.management.base import BaseCommand, CommandError

from reports.audit import audit_verify


class Command(BaseCommand):
    help = "Verify the audit log's hash chain. Exits non-zero naming the first broken event."

    def handle(self, *args, **options):
        checked, broken, why = audit_verify()
        if broken is not None:
            raise CommandError(f"audit chain broken at event {broken}: {why} ({checked} events before it are intact)")
        self.stdout.write(f"audit chain intact: {checked} events")
