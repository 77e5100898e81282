"""Moving media between the local folder and an S3 bucket (the real S3-protocol server of
tests/conftest.py): every file copied as the ciphertext it is, checked by SHA-256, resumable,
audited; afterwards the service reads everything from the other store."""

import io
from unittest import mock

import pytest
from django.core.management import CommandError, call_command

from reports.intake import files
from reports.intake.storage import media_store
from reports.models import AuditEvent, Item

from .factories import make_item, stored_files
from .support.s3 import S3Root

pytestmark = pytest.mark.django_db


def move(source: str, target: str) -> str:
    out = io.StringIO()
    call_command("move_media", "--from", source, "--to", target, stdout=out)
    return out.getvalue()


def all_readable() -> bool:
    store = media_store()
    for item in Item.objects.all():
        store.get(item.original_blob)
        for name in item.previews.values():
            store.get(name)
    return True


@pytest.fixture
def bucket(settings, s3_server):
    """An S3 bucket configured next to the local folder, which stays the store in use."""
    name = s3_server.new_bucket()
    for setting, value in s3_server.settings(name).items():
        setattr(settings, setting, value)
    settings.TSREVIEW_MEDIA_STORAGE = "local"
    return S3Root(s3_server.client, name)


def test_media_moves_to_s3_and_back_and_reads_from_each(bucket, settings, media_root, tmp_path):
    items = [make_item(seed) for seed in range(3)]  # 3 originals + 3 preview sets (thumbnail and inspect views, one file each)
    local = sorted(p.relative_to(media_root).as_posix() for p in stored_files(media_root))
    assert "6 files checked, 6 copied and verified, 0 already there, 0 failed" in move("local", "s3")
    assert bucket.keys() == local
    assert all((bucket / name).read_bytes() == (media_root / name).read_bytes() for name in local)
    settings.TSREVIEW_MEDIA_STORAGE = "s3"
    assert all_readable() and media_store().files.kind == "s3"

    settings.TSREVIEW_MEDIA_ROOT = tmp_path / "new-media"
    assert "6 copied and verified" in move("s3", "local")
    settings.TSREVIEW_MEDIA_STORAGE = "local"
    assert all_readable() and media_store().get(items[0].original_blob)
    moves = AuditEvent.objects.filter(action="media.moved").order_by("id")
    assert [(e.data["from"], e.data["to"], e.data["copied"]) for e in moves] == [("local", "s3", 6), ("s3", "local", 6)]


def test_an_interrupted_move_resumes_without_copying_again(bucket):
    for seed in range(3):
        make_item(seed)
    real_finish, calls = files.S3Writer.finish, []

    def crash_after_two(self):
        calls.append(self)
        if len(calls) > 2:
            raise KeyboardInterrupt
        return real_finish(self)

    with mock.patch.object(files.S3Writer, "finish", crash_after_two), pytest.raises(KeyboardInterrupt):
        move("local", "s3")
    assert len(bucket.keys()) == 2 and bucket.unfinished_uploads() == []
    assert "6 files checked, 4 copied and verified, 2 already there, 0 failed" in move("local", "s3")
    assert "0 copied and verified, 6 already there" in move("local", "s3")


def test_a_damaged_original_is_not_kept_at_the_destination(bucket, media_root):
    item = make_item(1)
    path = media_root / item.original_blob
    sealed = bytearray(path.read_bytes())
    sealed[-20] ^= 0xFF  # one bit of ciphertext flipped on the local disk
    path.write_bytes(bytes(sealed))
    with pytest.raises(CommandError, match="1 files did not match"):
        move("local", "s3")
    assert item.original_blob not in bucket.keys() and len(bucket.keys()) == 1  # the previews (one set) moved
    assert AuditEvent.objects.get(action="media.moved").data["failed"] == 1


def test_moving_a_store_onto_itself_is_refused(bucket):
    with pytest.raises(CommandError, match="same store"):
        move("s3", "s3")
