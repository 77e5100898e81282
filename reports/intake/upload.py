"""Receiving a push's file: hashed and encrypted chunk by chunk as it arrives, straight into the
media store. The bytes are never on disk in plaintext, and whole in memory only while they fit
the picture limit (a picture is checked from memory, not read back and decrypted; a video is
not held); a push that is refused afterwards discards what was written."""

import hashlib

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopFutureHandlers, StopUpload

from .storage import media_store

HEAD_BYTES = 64 * 1024  # kept in memory to tell the type from the bytes


class StoredUpload(UploadedFile):
    """The "file" part once received: where its ciphertext is, its size, hashes and first bytes."""

    def __init__(self, writer, name, content_type):
        super().__init__(file=None, name=name, content_type=content_type, size=0)
        self._writer, self.blob, self.head = writer, writer.name, b""
        self.plain: bytearray | None = bytearray()  # None once larger than a picture may be
        self._hashes = {k: hashlib.new(k, usedforsecurity=k == "sha256") for k in ("md5", "sha1", "sha256")}
        self.digests: dict[str, str] = {}
        self.kept = False

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > max(settings.TSREVIEW_MAX_UPLOAD_BYTES, settings.TSREVIEW_MAX_VIDEO_BYTES):
            raise StopUpload(connection_reset=True)
        if len(self.head) < HEAD_BYTES:
            self.head += data[: HEAD_BYTES - len(self.head)]
        if self.plain is not None and self.size <= settings.TSREVIEW_MAX_UPLOAD_BYTES:
            self.plain += data
        else:
            self.plain = None
        for h in self._hashes.values():
            h.update(data)
        self._writer.write(data)

    def complete(self) -> None:
        self._writer.finish()
        self._writer = None
        self.digests = {k: h.hexdigest() for k, h in self._hashes.items()}

    def discard(self) -> None:
        """Remove what was written, unless intake kept it for an item."""
        if self._writer is not None:
            self._writer.abort()
            self._writer = None
        elif not self.kept:
            media_store().delete(self.blob)

    def read(self, *args):  # the bytes are in the store, not here
        raise OSError("a stored upload is read from the media store")


class EncryptingUploadHandler(FileUploadHandler):
    """For the part named "file"; every other part goes on to the next handler."""

    def __init__(self, request=None):
        super().__init__(request)
        self.upload = None
        self.uploads: list[StoredUpload] = []

    def new_file(self, field_name, *args, **kwargs):
        super().new_file(field_name, *args, **kwargs)
        if field_name != "file" or self.upload is not None:
            return
        self.upload = StoredUpload(media_store().writer(), self.file_name, self.content_type)
        self.uploads.append(self.upload)
        raise StopFutureHandlers

    def receive_data_chunk(self, raw_data, start):
        if self.upload is None or self.field_name != "file":
            return raw_data
        self.upload.feed(raw_data)
        return None

    def file_complete(self, file_size):
        if self.upload is None or self.field_name != "file":
            return None
        upload, self.upload = self.upload, None
        upload.complete()
        return upload

    def upload_interrupted(self):
        for upload in self.uploads:
            upload.discard()
