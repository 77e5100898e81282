"""Encrypted media at rest: AES-256-GCM files in a folder that no URL serves.

Each file is MAGIC + key id + nonce + ciphertext; its name is the associated data, so a file
moved to another name does not decrypt. New files use the current key (TSREVIEW_MEDIA_KEY, or
_FILE; the embedded default makes var/media.key on first use); files under an older key in
TSREVIEW_MEDIA_OLD_KEYS still read, until `manage.py rotate_media_key` re-encrypts them.
"""

import base64
import functools
import hashlib
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

    def get(self, name: str) -> bytes:
        sealed = self._path(name).read_bytes()
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
        return header[len(MAGIC) :] == self.key_id

    def rekey(self, name: str) -> bool:
        """Re-encrypt one file under the current key. False if it already was (or is gone)."""
        path = self._path(name)
        if self.is_current(name):
            return False
        sealed = self._seal(name, self.get(name))
        if not path.exists():  # purged meanwhile: do not bring it back
            return False
        self._write(path, sealed)
        return True

    def delete(self, name: str) -> None:
        if name:
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
