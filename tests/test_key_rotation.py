"""Media keys rotate without downtime: old files stay readable until re-encrypted."""

import base64
import io
from unittest import mock

import pytest
from django.core.management import call_command

from reports.intake.storage import MediaStore, media_store
from reports.models import AuditEvent, Item

from .factories import TEST_MEDIA_KEY, make_item

pytestmark = pytest.mark.django_db
NEW_KEY = base64.urlsafe_b64encode(b"n" * 32).decode()


def all_readable() -> bool:
    store = media_store()
    for item in Item.objects.all():
        store.get(item.original_blob)
        for name in item.previews.values():
            store.get(name)
    return True


def rotate(**kwargs) -> str:
    out = io.StringIO()
    call_command("rotate_media_key", stdout=out, **kwargs)
    return out.getvalue()


@pytest.fixture
def stored(db):
    return [make_item(seed) for seed in range(3)]  # 3 originals + 3 preview sets, under the test key


def test_after_switching_keys_old_files_still_read_and_new_ones_use_the_new_key(stored, settings):
    settings.TSREVIEW_MEDIA_KEY, settings.TSREVIEW_MEDIA_OLD_KEYS = NEW_KEY, TEST_MEDIA_KEY
    assert all_readable()
    fresh = make_item(9)
    assert media_store().is_current(fresh.original_blob)
    assert not media_store().is_current(stored[0].original_blob)


def test_rotation_re_encrypts_everything_and_the_old_key_can_go(stored, settings, media_root):
    before = {name: (media_root / name).read_bytes() for name in media_store().names()}
    settings.TSREVIEW_MEDIA_KEY, settings.TSREVIEW_MEDIA_OLD_KEYS = NEW_KEY, TEST_MEDIA_KEY
    assert "6 would be re-encrypted" in rotate(dry_run=True)
    assert "6 files checked, 6 re-encrypted" in rotate()
    assert all((media_root / name).read_bytes() != data for name, data in before.items())
    settings.TSREVIEW_MEDIA_OLD_KEYS = ""
    assert all_readable()
    assert "6 files checked, 0 re-encrypted" in rotate()
    assert AuditEvent.objects.filter(action="media.key_rotated").count() == 2


def test_an_interrupted_rotation_resumes_where_it_stopped(stored, settings):
    settings.TSREVIEW_MEDIA_KEY, settings.TSREVIEW_MEDIA_OLD_KEYS = NEW_KEY, TEST_MEDIA_KEY
    real_rekey, calls = MediaStore.rekey, []

    def crash_after_two(self, name):
        calls.append(name)
        if len(calls) > 2:
            raise KeyboardInterrupt
        return real_rekey(self, name)

    with mock.patch.object(MediaStore, "rekey", crash_after_two), pytest.raises(KeyboardInterrupt):
        rotate()
    assert all_readable()  # mid-rotation, every file reads
    assert "6 files checked, 4 re-encrypted" in rotate()
    settings.TSREVIEW_MEDIA_OLD_KEYS = ""
    assert all_readable()


def test_a_file_under_an_unknown_key_is_refused(stored, settings):
    settings.TSREVIEW_MEDIA_KEY, settings.TSREVIEW_MEDIA_OLD_KEYS = NEW_KEY, ""
    with pytest.raises(ValueError, match="key that is not configured"):
        media_store().get(stored[0].original_blob)
