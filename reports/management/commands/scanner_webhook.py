from django.core.management.base import BaseCommand, CommandError

from reports.errors import Refused
from reports.feedback.webhooks import scanner_webhook_configure
from reports.models import Scanner


class Command(BaseCommand):
    help = ("Set a scanner's webhook callback URL and print its signing secret (made on first use, or with --rotate). "
            "The secret is shown only this once; after a rotation the old one also signs for a day.")

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--url", default=None, help="The callback URL (empty string: stop pushing, pull only).")
        parser.add_argument("--rotate", action="store_true", help="Make a new secret.")

    def handle(self, *args, name, url, rotate, **options):
        scanner = Scanner.objects.filter(name=name).first()
        if scanner is None:
            raise CommandError(f"no scanner named {name!r}")
        try:
            secret = scanner_webhook_configure(actor=None, scanner=scanner, url=url, rotate=rotate)
        except Refused as exc:
            raise CommandError("; ".join(exc.errors.values())) from None
        self.stdout.write(secret or "(secret unchanged; use --rotate for a new one)")
