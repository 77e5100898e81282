"""Encrypted media at rest: AES-256-GCM files in a folder that no URL serves.

Each file is MAGIC + key id + nonce + ciphertext; its name is the associated data, so a file
moved to another name does not decrypt. Large uploads (videos) are written as they arrive in a
chunked layout (MAGIC2): each 1 MiB chunk sealed apart, with its number and whether it is the
last in its associated data, so chunks cannot be reordered, dropped or the file cut short; they
are never whole in memory and never on disk in plaintext. New files use the current key (TSREVIEW_MEDIA_KEY, or
_FILE; the embedded default makes var/media.key on first use); files under an older key in
TSREVIEW_MEDIA_OLD_KEYS still read, until `manage.py rotate_media_key` re-encrypts them.

Where the ciphertext lives is the store's files (files.py): a local folder (the embedded
default) or an S3-compatible bucket (TSREVIEW_MEDIA_STORAGE=s3). Encryption happens here, before
any byte leaves the process, so the bucket holds only ciphertext under random names.
"""

import base64
import contextlib
import fcntl
import functools
import hashlib
import io
import json
import os
import secrets
import uuid
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ..keyfiles import key_text
from .files import LocalFiles, S3Objects

MAGIC = b"TSR1"
KEY_ID_BYTES = 8
NONCE_BYTES = 12
HEADER = len(MAGIC) + KEY_ID_BYTES + NONCE_BYTES
MAGIC2 = b"TSR2"
CHUNK = 1024 * 1024
TAG = 16
PREFIX_BYTES = 8  # each chunk's nonce: a random prefix per file and the chunk's number
HEADER2 = len(MAGIC2) + KEY_ID_BYTES + PREFIX_BYTES + 4  # ... and the file's chunk size


# A set: several small derivatives of one item (a picture's thumbnail and inspect views) sealed
# as one file, so making them costs one write (and one fsync) instead of one each. Inside the
# encryption: SET_MAGIC, a 4-byte length, a JSON index {kind: [offset, length]}, the parts.
SET_MAGIC = b"TSRSET1\n"


def set_pack(parts: dict[str, bytes]) -> bytes:
    index, offset = {}, 0
    for kind, data in parts.items():
        index[kind] = [offset, len(data)]
        offset += len(data)
    head = json.dumps(index, separators=(",", ":")).encode()
    return b"".join([SET_MAGIC, len(head).to_bytes(4, "big"), head, *parts.values()])


def set_part(blob: bytes, kind: str) -> bytes:
    """`kind`'s part of a set; a file that is not a set (a preview stored alone, as every preview
    was before sets) is returned whole. KeyError if the set holds no such part."""
    if not blob.startswith(SET_MAGIC):
        return blob
    start = len(SET_MAGIC) + 4
    end = start + int.from_bytes(blob[len(SET_MAGIC):start], "big")
    offset, length = json.loads(blob[start:end])[kind]
    return blob[end + offset:end + offset + length]


def _chunk_aad(name: str, number: int, last: bool) -> bytes:
    return f"{name}|{number}|{'last' if last else 'more'}".encode()


class ChunkedWriter:
    """Encrypts a stream chunk by chunk into the store; finish() makes it visible under its
    name, abort() leaves nothing behind. Only ciphertext is ever written."""

    def __init__(self, store: "MediaStore", name: str):
        self.name, self._store = name, store
        self._fh = store.files.writer(name)
        self._prefix = secrets.token_bytes(PREFIX_BYTES)
        self._aead = store._keys[store.key_id]
        self._pending, self._number, self._chunk_size = bytearray(), 0, CHUNK
        self._fh.write(MAGIC2 + store.key_id + self._prefix + self._chunk_size.to_bytes(4, "big"))

    def write(self, data: bytes) -> None:
        self._pending += data
        while len(self._pending) > self._chunk_size:  # keep one chunk back: the last one is sealed as last
            self._seal(bytes(self._pending[: self._chunk_size]), last=False)
            del self._pending[: self._chunk_size]

    def _seal(self, plain: bytes, *, last: bool) -> None:
        nonce = self._prefix + self._number.to_bytes(4, "big")
        self._fh.write(self._aead.encrypt(nonce, plain, _chunk_aad(self.name, self._number, last)))
        self._number += 1

    def finish(self) -> str:
        self._seal(bytes(self._pending), last=True)
        self._pending = bytearray()
        self._fh.finish()  # visible under its name only now (a rename, or an S3 upload completed)
        return self.name

    def abort(self) -> None:
        self._fh.abort()


class ChunkedReader(io.RawIOBase):
    """A read-only, seekable file over a stored file (either layout), decrypting one chunk at a
    time: PyAV reads videos through it without the whole file in memory."""

    def __init__(self, store: "MediaStore", name: str, sealed: io.BytesIO | None = None):
        # The stored file read where it is (a local file, or ranged reads of an object), or
        # ciphertext already in memory.
        self.name = name
        self._fh = sealed if sealed is not None else store.files.open(name)
        header = self._fh.read(HEADER2)
        if not header.startswith(MAGIC2):
            raise ValueError("not a chunked tsreview media file")
        self._aead = store._keys.get(header[len(MAGIC2): len(MAGIC2) + KEY_ID_BYTES])
        if self._aead is None:
            raise ValueError("encrypted under a key that is not configured")
        self._prefix = header[len(MAGIC2) + KEY_ID_BYTES: len(MAGIC2) + KEY_ID_BYTES + PREFIX_BYTES]
        self._chunk_size = int.from_bytes(header[-4:], "big")
        sealed = self._fh.seek(0, io.SEEK_END) - HEADER2
        self._chunks = max(1, -(-sealed // (self._chunk_size + TAG)))
        self.size = sealed - self._chunks * TAG
        self._pos, self._cached = 0, (-1, b"")

    def _chunk(self, number: int) -> bytes:
        if self._cached[0] != number:
            self._fh.seek(HEADER2 + number * (self._chunk_size + TAG))
            sealed = self._fh.read(self._chunk_size + TAG)
            nonce = self._prefix + number.to_bytes(4, "big")
            last = number == self._chunks - 1
            self._cached = (number, self._aead.decrypt(nonce, sealed, _chunk_aad(self.name, number, last)))
        return self._cached[1]

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self._pos

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size=-1):
        if size is None or size < 0:
            size = self.size - self._pos
        out = bytearray()
        while size > 0 and self._pos < self.size:
            number, offset = divmod(self._pos, self._chunk_size)
            piece = self._chunk(number)[offset: offset + size]
            out += piece
            self._pos += len(piece)
            size -= len(piece)
        return bytes(out)

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self):
        self._fh.close()
        super().close()


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"tsreview-media-key|" + key).digest()[:KEY_ID_BYTES]


class MediaStore:
    def __init__(self, files: "LocalFiles | S3Objects | Path", key: bytes, old_keys: tuple[bytes, ...] = ()):
        self.files = LocalFiles(files) if isinstance(files, (str, Path)) else files
        self.key_id = key_id(key)
        self._keys = {key_id(k): AESGCM(k) for k in (*old_keys, key)}

    def put(self, data: bytes) -> str:
        """Encrypt and write; returns the new file's name. Written whole or not at all."""
        name = new_name()
        self.files.write(name, self._seal(name, data))
        return name

    def _seal(self, name: str, data: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return MAGIC + self.key_id + nonce + self._keys[self.key_id].encrypt(nonce, data, name.encode())

    def writer(self) -> ChunkedWriter:
        """A new file written as a stream (see ChunkedWriter)."""
        return ChunkedWriter(self, new_name())

    def open(self, name: str) -> io.RawIOBase:
        """A stored file as a seekable read-only file, decrypted chunk by chunk (a file of the
        whole-file layout is decrypted into memory: those are small)."""
        chunked = self.files.head(name, len(MAGIC2)) == MAGIC2
        return ChunkedReader(self, name) if chunked else io.BytesIO(self.get(name))

    def get(self, name: str) -> bytes:
        sealed = self.files.read(name)
        if sealed.startswith(MAGIC2):
            with ChunkedReader(self, name, io.BytesIO(sealed)) as reader:
                return reader.read()
        if not sealed.startswith(MAGIC):
            raise ValueError("not a tsreview media file")
        aead = self._keys.get(sealed[len(MAGIC) : len(MAGIC) + KEY_ID_BYTES])
        if aead is None:
            raise ValueError("encrypted under a key that is not configured")
        nonce = sealed[len(MAGIC) + KEY_ID_BYTES : HEADER]
        return aead.decrypt(nonce, sealed[HEADER:], name.encode())

    def get_part(self, name: str, kind: str) -> bytes:
        """One derivative of a file written as a set (set_pack), or the whole file if it is not one."""
        return set_part(self.get(name), kind)

    def names(self):
        """Every stored file's name (for key rotation and moving between stores)."""
        return self.files.names()

    def is_current(self, name: str) -> bool:
        """Encrypted under the current key (or gone)."""
        try:
            header = self.files.head(name, len(MAGIC) + KEY_ID_BYTES)
        except FileNotFoundError:
            return True
        return header[len(MAGIC):] == self.key_id

    @contextlib.contextmanager
    def _name_lock(self, name: str):
        """Exclusive with every other holder of this name's lock: a re-encryption's "still
        there? then replace" and a deletion cannot interleave, so a file purged while it was
        being re-encrypted is not brought back. On PostgreSQL an advisory lock on the name (it
        holds across processes and machines, whichever store); in the embedded mode (SQLite,
        one machine, a folder) an flock on the file's folder."""
        from django.db import connection

        if connection.vendor == "postgresql":
            key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(%s)", [key])
            try:
                yield
            finally:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
            return
        folder = getattr(self.files, "root", None)
        try:
            fd = os.open(self.files._path(name).parent, os.O_RDONLY | os.O_DIRECTORY) if folder else None
        except FileNotFoundError:
            fd = None
        if fd is None:
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def rekey(self, name: str) -> bool:
        """Re-encrypt one file under the current key. False if it already was (or is gone, or
        was deleted while this ran: checked and replaced under the name's lock)."""
        if self.is_current(name):
            return False
        try:
            chunked = self.files.head(name, len(MAGIC2)) == MAGIC2
        except FileNotFoundError:
            return False
        if chunked:  # re-sealed chunk by chunk into the same name
            with ChunkedReader(self, name) as reader:
                writer = ChunkedWriter(self, name)
                while piece := reader.read(CHUNK):
                    writer.write(piece)
            with self._name_lock(name):
                if not self.files.exists(name):  # purged meanwhile: do not bring it back
                    writer.abort()
                    return False
                writer.finish()
            return True
        sealed = self._seal(name, self.get(name))
        with self._name_lock(name):
            if not self.files.exists(name):  # purged meanwhile: do not bring it back
                return False
            self.files.write(name, sealed)
        return True

    def delete(self, name: str) -> None:
        if name:
            with self._name_lock(name):
                self.files.delete(name)

    def exists(self, name: str) -> bool:
        return bool(name) and self.files.exists(name)


def new_name() -> str:
    """A new file's name: random hex and nothing else (no hash, no file name, not even whether
    it is an original or a preview: the names are the object keys of a bucket). Names made
    before 2026-12 begin with originals/ or previews/ and stay valid."""
    return f"m/{uuid.uuid4().hex[:2]}/{uuid.uuid4().hex}"


def _decode_key(encoded: str) -> bytes:
    key = base64.urlsafe_b64decode(encoded.strip())
    if len(key) != 32:
        raise ImproperlyConfigured("media keys must be 32 bytes, urlsafe base64")
    return key


def _load_key() -> bytes:
    return _decode_key(key_text(settings.TSREVIEW_MEDIA_KEY, settings.TSREVIEW_MEDIA_KEY_FILE_DEFAULT,
                                lambda: base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode(),
                                "TSREVIEW_MEDIA_KEY"))


# A process works with one store (two while media moves between kinds). The bound lets go of
# stores whose settings are no longer in force: a rotated key, or a test's own folder or bucket,
# each of which held a boto3 client's service models (several MB); unbounded, the suite's
# process grew to 1.6 GB and each full garbage collection took seconds.
@functools.lru_cache(maxsize=4)
def _store(files_config: tuple, key_setting: str, old_keys: str) -> MediaStore:
    old = tuple(_decode_key(k) for k in old_keys.split(",") if k.strip())
    return MediaStore(_files(files_config), _load_key(), old)


def _files(config: tuple) -> "LocalFiles | S3Objects":
    kind, *options = config
    if kind == "s3":
        return S3Objects(**dict(options))
    return LocalFiles(Path(options[0]))


def files_config(kind: str | None = None) -> tuple:
    """The settings of one kind of store ("local" or "s3"; by default the configured one)."""
    kind = kind or settings.TSREVIEW_MEDIA_STORAGE
    if kind == "local":
        return ("local", str(settings.TSREVIEW_MEDIA_ROOT))
    if kind == "s3":
        if not settings.TSREVIEW_S3_BUCKET:
            raise ImproperlyConfigured("TSREVIEW_MEDIA_STORAGE=s3 needs TSREVIEW_S3_BUCKET")
        return ("s3", ("bucket", settings.TSREVIEW_S3_BUCKET), ("endpoint_url", settings.TSREVIEW_S3_ENDPOINT_URL),
                ("region", settings.TSREVIEW_S3_REGION), ("access_key", settings.TSREVIEW_S3_ACCESS_KEY_ID),
                ("secret_key", settings.TSREVIEW_S3_SECRET_ACCESS_KEY), ("prefix", settings.TSREVIEW_S3_PREFIX),
                ("addressing_style", settings.TSREVIEW_S3_ADDRESSING_STYLE))
    raise ImproperlyConfigured(f"TSREVIEW_MEDIA_STORAGE must be local or s3, not {kind!r}")


def media_store(kind: str | None = None) -> MediaStore:
    """The configured store (or the store of one kind, for moving media between them)."""
    return _store(files_config(kind), settings.TSREVIEW_MEDIA_KEY, settings.TSREVIEW_MEDIA_OLD_KEYS)
