from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from reports.audit import audit_record
from reports.models import Role


class Command(BaseCommand):
    help = "Create a person with a role (reviewer, lead or admin). Reads the password from --password or asks."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", choices=Role.values, required=True)
        parser.add_argument("--password")
        parser.add_argument("--email", default="")

    def handle(self, *args, username, role, password, email, **options):
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            raise CommandError(f"a user named {username!r} already exists")
        if password is None:
            from getpass import getpass

            password = getpass("Password: ")
        user = User(username=username, email=email, is_staff=role == Role.ADMIN, is_superuser=role == Role.ADMIN)
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        with transaction.atomic():
            user.set_password(password)
            user.save()
            user.groups.add(Group.objects.get_or_create(name=role)[0])
            audit_record(actor=None, action="user.created", subject=user, data={"username": username, "role": role})
        self.stdout.write(f"created {role} {username}")
