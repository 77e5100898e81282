"""Encrypted media at rest: AES-256-GCM files in a folder that no URL serves.

Each file is MAGIC + key id + nonce + ciphertext; its name is the associated data, so a file
moved to another name does not decrypt. Large uploads (videos) are written as they arrive in a
chunked layout (MAGIC2): each 1 MiB chunk sealed apart, with its number and whether it is the
last in its associated data, so chunks cannot be reordered, dropped or the file cut short; they
are never whole in memory and never on disk in plaintext. New files use the current key (TSREVIEW_MEDIA_KEY, or
_FILE; the embedded default makes var/media.key on first use); files under an older key in
TSREVIEW_MEDIA_OLD_KEYS still read, until `manage.py rotate_media_key` re-encrypts them.
"""

import base64
import contextlib
import fcntl
import functools
import hashlib
import io
import os
import secrets
import uuid
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

MAGIC = b"TSR1"
KEY_ID_BYTES = 8
NONCE_BYTES = 12
HEADER = len(MAGIC) + KEY_ID_BYTES + NONCE_BYTES
MAGIC2 = b"TSR2"
CHUNK = 1024 * 1024
TAG = 16
PREFIX_BYTES = 8  # each chunk's nonce: a random prefix per file and the chunk's number
HEADER2 = len(MAGIC2) + KEY_ID_BYTES + PREFIX_BYTES + 4  # ... and the file's chunk size


def _chunk_aad(name: str, number: int, last: bool) -> bytes:
    return f"{name}|{number}|{'last' if last else 'more'}".encode()


class ChunkedWriter:
    """Encrypts a stream chunk by chunk into the store; finish() makes it visible under its
    name, abort() leaves nothing behind. Only ciphertext is ever written."""

    def __init__(self, store: "MediaStore", name: str):
        self.name, self._store = name, store
        self.path = store._path(name)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        self._fh = open(self._tmp, "wb", opener=lambda p, f: os.open(p, f, 0o600))  # noqa: SIM115 - closed by finish/abort
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
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self._tmp, self.path)
        return self.name

    def abort(self) -> None:
        self._fh.close()
        self._tmp.unlink(missing_ok=True)


class ChunkedReader(io.RawIOBase):
    """A read-only, seekable file over a stored file (either layout), decrypting one chunk at a
    time: PyAV reads videos through it without the whole file in memory."""

    def __init__(self, store: "MediaStore", name: str):
        self.name, self._fh = name, open(store._path(name), "rb")  # noqa: SIM115 - closed by close()
        header = self._fh.read(HEADER2)
        if not header.startswith(MAGIC2):
            raise ValueError("not a chunked tsreview media file")
        self._aead = store._keys.get(header[len(MAGIC2): len(MAGIC2) + KEY_ID_BYTES])
        if self._aead is None:
            raise ValueError("encrypted under a key that is not configured")
        self._prefix = header[len(MAGIC2) + KEY_ID_BYTES: len(MAGIC2) + KEY_ID_BYTES + PREFIX_BYTES]
        self._chunk_size = int.from_bytes(header[-4:], "big")
        sealed = os.fstat(self._fh.fileno()).st_size - HEADER2
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
    def __init__(self, root: Path, key: bytes, old_keys: tuple[bytes, ...] = ()):
        self.root = Path(root)
        self.key_id = key_id(key)
        self._keys = {key_id(k): AESGCM(k) for k in (*old_keys, key)}

    def _path(self, name: str) -> Path:
        path = (self.root / name).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError("media name escapes the store")
        return path

    def put(self, data: bytes, *, kind: str) -> str:
        """Encrypt and write; returns the new file's name. Written whole or not at all."""
        name = f"{kind}/{uuid.uuid4().hex[:2]}/{uuid.uuid4().hex}"
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._write(path, self._seal(name, data))
        return name

    def _seal(self, name: str, data: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return MAGIC + self.key_id + nonce + self._keys[self.key_id].encrypt(nonce, data, name.encode())

    @staticmethod
    def _write(path: Path, sealed: bytes) -> None:
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb", opener=lambda p, f: os.open(p, f, 0o600)) as fh:
            fh.write(sealed)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # readers see the old file or the new one, never half of one

    def writer(self, *, kind: str) -> ChunkedWriter:
        """A new file written as a stream (see ChunkedWriter)."""
        return ChunkedWriter(self, f"{kind}/{uuid.uuid4().hex[:2]}/{uuid.uuid4().hex}")

    def open(self, name: str) -> io.RawIOBase:
        """A stored file as a seekable read-only file, decrypted chunk by chunk (a file of the
        whole-file layout is decrypted into memory: those are small)."""
        with open(self._path(name), "rb") as fh:
            chunked = fh.read(len(MAGIC2)) == MAGIC2
        return ChunkedReader(self, name) if chunked else io.BytesIO(self.get(name))

    def get(self, name: str) -> bytes:
        sealed = self._path(name).read_bytes()
        if sealed.startswith(MAGIC2):
            with ChunkedReader(self, name) as reader:
                return reader.read()
        if not sealed.startswith(MAGIC):
            raise ValueError("not a tsreview media file")
        aead = self._keys.get(sealed[len(MAGIC) : len(MAGIC) + KEY_ID_BYTES])
        if aead is None:
            raise ValueError("encrypted under a key that is not configured")
        nonce = sealed[len(MAGIC) + KEY_ID_BYTES : HEADER]
        return aead.decrypt(nonce, sealed[HEADER:], name.encode())

    def names(self):
        """Every stored file's name (for key rotation)."""
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.name.endswith(".tmp"):
                yield path.relative_to(self.root).as_posix()

    def is_current(self, name: str) -> bool:
        """Encrypted under the current key (or gone)."""
        try:
            with open(self._path(name), "rb") as fh:
                header = fh.read(len(MAGIC) + KEY_ID_BYTES)
        except FileNotFoundError:
            return True
        return header[len(MAGIC):] == self.key_id

    @contextlib.contextmanager
    def _name_lock(self, name: str):
        """Exclusive with every other holder for files of this name's folder (an flock on the
        folder): a re-encryption's "still there? then replace" and a deletion cannot interleave,
        so a file purged while it was being re-encrypted is not brought back."""
        folder = self._path(name).parent
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def rekey(self, name: str) -> bool:
        """Re-encrypt one file under the current key. False if it already was (or is gone, or
        was deleted while this ran: checked and replaced under the folder's lock)."""
        path = self._path(name)
        if self.is_current(name):
            return False
        try:
            with open(path, "rb") as fh:
                chunked = fh.read(len(MAGIC2)) == MAGIC2
        except FileNotFoundError:
            return False
        if chunked:  # re-sealed chunk by chunk into the same name
            with ChunkedReader(self, name) as reader:
                writer = ChunkedWriter(self, name)
                while piece := reader.read(CHUNK):
                    writer.write(piece)
            with self._name_lock(name):
                if not path.exists():  # purged meanwhile: do not bring it back
                    writer.abort()
                    return False
                writer.finish()
            return True
        sealed = self._seal(name, self.get(name))
        with self._name_lock(name):
            if not path.exists():  # purged meanwhile: do not bring it back
                return False
            self._write(path, sealed)
        return True

    def delete(self, name: str) -> None:
        if name:
            with self._name_lock(name):
                self._path(name).unlink(missing_ok=True)

    def exists(self, name: str) -> bool:
        return bool(name) and self._path(name).exists()


def _decode_key(encoded: str) -> bytes:
    key = base64.urlsafe_b64decode(encoded.strip())
    if len(key) != 32:
        raise ImproperlyConfigured("media keys must be 32 bytes, urlsafe base64")
    return key


def _load_key() -> bytes:
    encoded = settings.TSREVIEW_MEDIA_KEY
    key_file = settings.TSREVIEW_MEDIA_KEY_FILE_DEFAULT
    if not encoded and key_file:
        key_file = Path(key_file)
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode())
        encoded = key_file.read_text().strip()
    if not encoded:
        raise ImproperlyConfigured("TSREVIEW_MEDIA_KEY is not set")
    return _decode_key(encoded)


@functools.cache
def _store(root: str, key_setting: str, old_keys: str) -> MediaStore:
    old = tuple(_decode_key(k) for k in old_keys.split(",") if k.strip())
    return MediaStore(Path(root), _load_key(), old)


def media_store() -> MediaStore:
    return _store(str(settings.TSREVIEW_MEDIA_ROOT), settings.TSREVIEW_MEDIA_KEY, settings.TSREVIEW_MEDIA_OLD_KEYS)
