from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from reports.api.auth import token_hash, token_new
from reports.audit import audit_record
from reports.models import Scanner


class Command(BaseCommand):
    help = "Create a scanner (an API client) and print its bearer token. The token is shown only this once."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--callback-url", default="",
                            help="Where its signed events go; `scanner_webhook NAME` then prints the signing secret.")

    def handle(self, *args, name, callback_url, **options):
        if Scanner.objects.filter(name=name).exists():
            raise CommandError(f"a scanner named {name!r} already exists")
        token = token_new()
        with transaction.atomic():
            scanner = Scanner.objects.create(name=name, token_hash=token_hash(token), token_prefix=token[:8],
                                             callback_url=callback_url)
            audit_record(actor=None, action="scanner.created", subject=scanner, data={"name": name})
        self.stdout.write(token)
