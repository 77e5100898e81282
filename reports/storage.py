"""Encrypted media at rest: AES-256-GCM files in a folder that no URL serves.

Each file is MAGIC + nonce + ciphertext; its name is the associated data, so a file moved to
another name does not decrypt. The key comes from TSREVIEW_MEDIA_KEY (or _FILE); the embedded
default makes one in var/media.key on first use.
"""

import base64
import functools
import os
import secrets
import uuid
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

MAGIC = b"TSR1"
NONCE_BYTES = 12


class MediaStore:
    def __init__(self, root: Path, key: bytes):
        self.root = Path(root)
        self._aead = AESGCM(key)

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
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = MAGIC + nonce + self._aead.encrypt(nonce, data, name.encode())
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb", opener=lambda p, f: os.open(p, f, 0o600)) as fh:
            fh.write(sealed)
        os.replace(tmp, path)
        return name

    def get(self, name: str) -> bytes:
        sealed = self._path(name).read_bytes()
        if not sealed.startswith(MAGIC):
            raise ValueError("not a tsreview media file")
        nonce = sealed[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
        return self._aead.decrypt(nonce, sealed[len(MAGIC) + NONCE_BYTES :], name.encode())

    def delete(self, name: str) -> None:
        if name:
            self._path(name).unlink(missing_ok=True)

    def exists(self, name: str) -> bool:
        return bool(name) and self._path(name).exists()


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
    key = base64.urlsafe_b64decode(encoded)
    if len(key) != 32:
        raise ImproperlyConfigured("TSREVIEW_MEDIA_KEY must be 32 bytes, urlsafe base64")
    return key


@functools.cache
def _store(root: str, key_setting: str) -> MediaStore:
    return MediaStore(Path(root), _load_key())


def media_store() -> MediaStore:
    return _store(str(settings.TSREVIEW_MEDIA_ROOT), settings.TSREVIEW_MEDIA_KEY)
