"""The media store on both kinds of storage (tests/conftest.py runs this module on the local
folder and on an S3 bucket): large files stream both ways, names reveal nothing, and only
ciphertext ever reaches the folder or the bucket."""

import base64
import hashlib
import json
import os
import re

import pytest

from devtools.synthetic import synthetic_image
from reports.intake import files, storage
from reports.intake.storage import media_store
from reports.models import Item

from .factories import make_metadata, push, stored_files, upload

pytestmark = pytest.mark.django_db


class Requests:
    """What the store asked the S3 server for (botocore's own event hooks; nothing is mocked)."""

    def __init__(self, store):
        self.calls = []
        if store.files.kind == "s3":
            store.files.client.meta.events.register("provide-client-params.s3", self._seen)

    def _seen(self, params, event_name, **kwargs):
        body = params.get("Body")
        self.calls.append((event_name.rsplit(".", 1)[-1], params.get("Range"), len(body) if isinstance(body, bytes) else 0))


def test_a_large_file_streams_in_and_reads_back_a_chunk_at_a_time(media_root, monkeypatch):
    monkeypatch.setattr(files, "PART_BYTES", 5 * 1024 * 1024)  # S3's smallest part: a 12 MiB file has three
    store = media_store()
    data = os.urandom(12 * 1024 * 1024 + 12345)
    requests = Requests(store)
    writer = store.writer()
    for start in range(0, len(data), 256 * 1024):
        writer.write(data[start:start + 256 * 1024])
    name = writer.finish()
    sealed = (media_root / name).read_bytes()
    assert sealed.startswith(storage.MAGIC2) and data[:4096] not in sealed and data[-4096:] not in sealed
    if store.files.kind == "s3":
        uploads = [size for call, _, size in requests.calls if call == "UploadPart"]
        assert len(uploads) == 3 and max(uploads) == files.PART_BYTES  # never the whole file in one request
        assert media_root.unfinished_uploads() == []
    requests.calls.clear()
    with store.open(name) as reader:
        reader.seek(7 * storage.CHUNK + 10)
        assert reader.read(100) == data[7 * storage.CHUNK + 10: 7 * storage.CHUNK + 110]
    if store.files.kind == "s3":  # the header and one sealed chunk were fetched, not the object
        ranges = [r for call, r, _ in requests.calls if call == "GetObject"]
        assert ranges and all(r for r in ranges)
        fetched = sum(int(r.split("-")[1]) - int(r.split("=")[1].split("-")[0]) + 1 for r in ranges)
        assert fetched < 2 * storage.CHUNK
    assert hashlib.sha256(store.get(name)).digest() == hashlib.sha256(data).digest()


def test_an_aborted_stream_leaves_nothing(media_root, monkeypatch):
    monkeypatch.setattr(files, "PART_BYTES", 5 * 1024 * 1024)
    writer = media_store().writer()
    writer.write(os.urandom(11 * 1024 * 1024))  # on S3, a multipart upload is under way
    writer.abort()
    assert stored_files(media_root) == []
    if hasattr(media_root, "unfinished_uploads"):
        assert media_root.unfinished_uploads() == []


def test_stored_names_reveal_neither_hashes_nor_file_names(api, media_root, django_capture_on_commit_callbacks):
    data = synthetic_image(31)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/submissions", {
            "file": upload(data, name="victim-holiday-photo.jpg"),
            "metadata": json.dumps(make_metadata("victim-holiday-photo"))}, format="multipart")
    assert response.status_code == 201
    item = Item.objects.get()
    names = [p.relative_to(media_root).as_posix() for p in stored_files(media_root)]
    assert len(names) == 2 and set(item.previews.values()) <= set(names)  # the original and one set of previews
    secrets = [item.sha256, item.md5, item.sha1, item.pdq, "victim", "holiday", "jpeg", "jpg", "original", "preview",
               "inspect", "thumb"]
    for name in names:
        assert files.NAME.match(name) and re.fullmatch(r"m/[0-9a-f]{2}/[0-9a-f]{32}", name), name  # not even its kind
        assert not any(secret and secret.lower() in name.lower() for secret in secrets), name
        sealed = (media_root / name).read_bytes()
        assert sealed[:4] in (storage.MAGIC, storage.MAGIC2) and data[:64] not in sealed


def test_names_lists_what_is_stored_and_delete_removes_it(media_root):
    store = media_store()
    made = sorted(store.put(f"picture {n}".encode()) for n in range(3))
    assert sorted(store.names()) == made
    store.delete(made[0])
    assert sorted(store.names()) == made[1:] and not store.exists(made[0]) and store.exists(made[1])
    with pytest.raises(FileNotFoundError):
        store.get(made[0])


@pytest.mark.parametrize("store_kind", ["s3"], indirect=True)
def test_a_push_while_the_bucket_does_not_answer_is_a_503_and_stores_nothing(api, settings, assert_nothing_stored):
    from .support.fault_services import free_port

    settings.TSREVIEW_S3_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    response = push(api)
    assert response.status_code == 503 and response["Retry-After"] == "30"
    assert response.json() == {"errors": {"service": ["The media store is unavailable; nothing was stored. Retry later."]}}
    assert_nothing_stored()


@pytest.mark.parametrize("store_kind", ["s3"], indirect=True)
def test_pages_that_need_the_bucket_answer_503_while_it_does_not_and_record_no_reveal(client, reviewer, settings):
    from reports.models import ExposureDay, ViewEvent
    from reports.review import queue

    from .factories import make_item
    from .support.fault_services import free_port

    item = make_item(1)  # stored while the bucket answers
    queue.item_claim(user=reviewer)
    settings.TSREVIEW_S3_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"  # then nothing listens there
    client.raise_request_exception = False
    client.force_login(reviewer)
    preview = client.get(f"/media/{item.pk}/preview/inspect-3/")
    assert preview.status_code == 503 and preview["Retry-After"] == "30"
    assert b"The media store cannot be reached" in preview.content and b"127.0.0.1" not in preview.content
    original = client.post(f"/media/{item.pk}/original/", {"mode": "hold"})
    assert original.status_code == 503 and b"The media store cannot be reached" in original.content
    assert not ViewEvent.objects.exists()  # nothing was sent: no reveal on record, none counted
    assert not ExposureDay.objects.filter(user=reviewer, reveals__gt=0).exists()
    assert client.get(f"/review/{item.pk}/").status_code == 200  # the page itself needs only the database


def test_stores_of_settings_no_longer_in_force_are_let_go(media_root, settings):
    """A process keeps the store of its settings (and the other kind's, while media moves), not
    one for every folder, bucket or key it was ever given: each S3 store holds a boto3 client."""
    current, key = media_store(), settings.TSREVIEW_MEDIA_KEY
    assert media_store() is current  # made once for the settings in force
    for n in range(10):  # ten keys in turn (rotations, say)
        settings.TSREVIEW_MEDIA_KEY = base64.urlsafe_b64encode(bytes([n]) * 32).decode()
        media_store()
    assert storage._store.cache_info().currsize <= 4
    settings.TSREVIEW_MEDIA_KEY = key
    assert media_store() is not current and media_store().get(media_store().put(b"x")) == b"x"
