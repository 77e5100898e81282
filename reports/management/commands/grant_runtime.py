from django.core.management.base import BaseCommand, CommandError

from reports.dbroles import RoleError, grant_runtime


class Command(BaseCommand):
    help = ("Grant the runtime role (DATABASE_URL's user) what web and workers need, as the owner "
            "(DATABASE_OWNER_URL): no UPDATE or DELETE on append-only tables, no TRUNCATE, no DDL. "
            "`migrate --database owner` runs this too.")

    def add_arguments(self, parser):
        parser.add_argument("--role", help="the runtime role (default: DATABASE_URL's user)")

    def handle(self, *args, role=None, **options):
        try:
            statements = grant_runtime(runtime_role=role)
        except RoleError as exc:
            raise CommandError(str(exc)) from None
        for sql in statements:
            self.stdout.write(sql + ";")
        self.stdout.write(f"runtime role granted: {len(statements)} statements")
