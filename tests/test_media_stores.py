"""The media store on both kinds of storage (tests/conftest.py runs this module on the local
folder and on an S3 bucket): large files stream both ways, names reveal nothing, and only
ciphertext ever reaches the folder or the bucket."""

import hashlib
import json
import os

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
    writer = store.writer(kind="originals")
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
    writer = media_store().writer(kind="originals")
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
    assert len(names) == 1 + len(item.previews)
    secrets = [item.sha256, item.md5, item.sha1, item.pdq, "victim", "holiday", "jpeg", "jpg"]
    for name in names:
        assert files.NAME.match(name), name
        assert not any(secret and secret.lower() in name.lower() for secret in secrets), name
        sealed = (media_root / name).read_bytes()
        assert sealed[:4] in (storage.MAGIC, storage.MAGIC2) and data[:64] not in sealed


def test_names_lists_what_is_stored_and_delete_removes_it(media_root):
    store = media_store()
    made = sorted(store.put(f"picture {n}".encode(), kind="previews") for n in range(3))
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
