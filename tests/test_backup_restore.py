"""The backup and restore drill of docs/deploy.md: pg_dump the database, restore it into a new
one, point a second process at it and at the same media store (an S3 bucket here), and check
that the audit chain verifies and that media decrypts and matches its SHA-256."""

import os
import subprocess
import sys
import uuid
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection, connections

from reports.models import AuditEvent, Item

from .factories import make_confirmed, make_item
from .support.fault_services import app_env

pytestmark = pytest.mark.django_db(transaction=True)


def pg(*args, check=True) -> subprocess.CompletedProcess:
    """A PostgreSQL client tool as the owner (the runtime role may not create databases)."""
    db = connections["owner"].settings_dict
    return subprocess.run([*args, "-h", db["HOST"] or "127.0.0.1", "-p", str(db["PORT"] or 5432), "-U", db["USER"]],
                          capture_output=True, text=True, timeout=120, check=check,
                          env={**os.environ, **({"PGPASSWORD": db["PASSWORD"]} if db["PASSWORD"] else {})})


@pytest.fixture
def restored_db():
    name = f"tsr_restore_{uuid.uuid4().hex[:10]}"
    pg("createdb", name)
    yield name
    pg("dropdb", "--if-exists", name, check=False)


@pytest.mark.parametrize("store_kind", ["s3"], indirect=True)
def test_a_restored_database_with_the_same_media_store_verifies(media_root, reviewer, restored_db, tmp_path, store_kind):
    items = [make_item(seed) for seed in range(3)] + [make_confirmed(7, reviewer)]
    events = AuditEvent.objects.count()
    dump = tmp_path / "tsreview.dump"
    db = connection.settings_dict
    pg("pg_dump", "--format=custom", "--no-owner", f"--file={dump}", db["NAME"])
    pg("pg_restore", "--no-owner", f"--dbname={restored_db}", str(dump))

    login = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")  # the runtime role
    url = f"postgres://{login}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{restored_db}"
    env = app_env(tmp_path / "unused-media", DATABASE_URL=url,
                  **{k: getattr(settings, k) for k in ("TSREVIEW_MEDIA_STORAGE", "TSREVIEW_S3_BUCKET", "TSREVIEW_S3_ENDPOINT_URL",
                                                         "TSREVIEW_S3_REGION", "TSREVIEW_S3_ACCESS_KEY_ID",
                                                         "TSREVIEW_S3_SECRET_ACCESS_KEY", "TSREVIEW_S3_ADDRESSING_STYLE")})

    def manage(*args):
        return subprocess.run([sys.executable, "manage.py", *args], env=env, cwd=settings.BASE_DIR,
                              capture_output=True, text=True, timeout=120)

    audit = manage("verify_audit")
    assert audit.returncode == 0 and f"audit chain intact: {events} events" in audit.stdout, audit.stdout + audit.stderr
    media = manage("verify_media", "--sample", "3")
    assert media.returncode == 0 and "3 originals checked, 3 match their SHA-256, 0 failed" in media.stdout, media.stderr
    assert manage("verify_audit").returncode == 0  # the check's own audit event keeps the chain intact
    assert Item.objects.count() == len(items)  # the original database is untouched by the drill
    assert not AuditEvent.objects.filter(action="media.verified").exists()


def test_verify_media_names_an_original_that_does_not_match(media_root, capsys):
    from django.core.management import CommandError, call_command

    item = make_item(1)
    (media_root / item.original_blob).write_bytes(b"TSR1" + b"\0" * 60)  # damaged in the backup
    with pytest.raises(CommandError, match="1 originals are missing, do not decrypt or do not match"):
        call_command("verify_media", "--sample", "0")
    assert AuditEvent.objects.get(action="media.verified").data == {"checked": 1, "failed": [item.pk]}
