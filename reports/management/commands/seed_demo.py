from django.core.management.base import BaseCommand

from devtools import demo


class Command(BaseCommand):
    help = "Demo data for a first look: users with printed passwords, a scanner, synthetic items pushed through intake."

    def add_arguments(self, parser):
        parser.add_argument("--items", type=int, default=24)

    def handle(self, *args, items, **options):
        self.stdout.write("Demo logins (passwords are new on every run):")
        for role, username, password in demo.people_create():
            self.stdout.write(f"  {role:9} {username:10} {password}")
        scanner, token = demo.scanner_create()
        self.stdout.write(f"Demo scanner token (new on every run): {token}")
        demo.queues_create()
        created, pushed = demo.items_push(scanner, items)
        self.stdout.write(f"Demo items: {created} new, {pushed - created} already there (two videos and a GIF among them).")
        confirmed = demo.confirmations_make(count=2)
        if confirmed:
            self.stdout.write(f"reviewer2 confirmed {confirmed} item(s), ready for a lead to report.")
        rep, members = demo.cluster_push(scanner)
        self.stdout.write(f"A near-duplicate cluster: item {rep} and {members} re-encode(s) waiting with it, reviewed as one task.")
        urgent = demo.urgent_mark()
        if urgent:
            self.stdout.write(f"Item {urgent} is marked urgent (first in the queue); the others wait by the priority policy.")
