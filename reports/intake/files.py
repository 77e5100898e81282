"""Where the media store's ciphertext lives: a local folder (the embedded default) or an
S3-compatible bucket. Both hold only what storage.py has already encrypted; both write a file
whole or not at all, stream large files both ways (a local file, or a multipart upload and
ranged reads) and list what they hold. Names are storage.new_name()'s: m/xx/random hex (older ones originals/ or previews/).
"""

import contextlib
import io
import os
import re
from pathlib import Path

from ..errors import StoreUnavailable

NAME = re.compile(r"^[a-z]+/[0-9a-f]{2}/[0-9a-f]{32}$")
PART_BYTES = 8 * 1024 * 1024  # a multipart upload's part (S3 wants at least 5 MiB but the last)


def _checked(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ValueError("not a media store name")
    return name


class LocalFiles:
    """A folder that no URL serves; files 0600 in folders 0700, replaced atomically."""

    kind = "local"

    def __init__(self, root: Path):
        self.root = Path(root)
        self._base = os.path.realpath(self.root)  # once: resolving every path cost a syscall per level

    def _path(self, name: str) -> Path:
        # A checked name has no "..", no leading "/" and nothing but letters, hex and two
        # slashes: it stays in the folder (the app makes every folder in it, 0700).
        return Path(self._base, _checked(name))

    def write(self, name: str, sealed: bytes) -> None:
        writer = self.writer(name)
        writer.write(sealed)
        writer.finish()

    def writer(self, name: str) -> "LocalWriter":
        return LocalWriter(self._path(name))

    def read(self, name: str) -> bytes:
        return self._path(name).read_bytes()

    def open(self, name: str) -> io.BufferedReader:
        return open(self._path(name), "rb")  # noqa: SIM115 - the caller closes it

    def head(self, name: str, size: int) -> bytes:
        with open(self._path(name), "rb") as fh:
            return fh.read(size)

    def exists(self, name: str) -> bool:
        return self._path(name).exists()

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def names(self):
        for path in sorted(self.root.rglob("*")):
            name = path.relative_to(self.root).as_posix()
            if path.is_file() and NAME.fullmatch(name):  # not a writer's .tmp, nor a stray file
                yield name


class LocalWriter:
    """Written to name.tmp, fsynced, then renamed: readers see the old file or the new one."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._tmp = path.with_name(path.name + ".tmp")
        self._fh = open(self._tmp, "wb", opener=lambda p, f: os.open(p, f, 0o600))  # noqa: SIM115 - closed by finish/abort

    def write(self, data: bytes) -> None:
        self._fh.write(data)

    def finish(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._fh.close()
        self._tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _answering():
    """botocore's own errors (no connection, timeouts) become StoreUnavailable; the service's
    answers (ClientError: 404, 403, ...) pass as they are."""
    from botocore.exceptions import BotoCoreError

    try:
        yield
    except BotoCoreError as exc:
        raise StoreUnavailable("the media store did not answer") from exc


class S3Objects:
    """A bucket through django-storages' S3 backend (its settings, credentials and per-thread
    boto3 connections); the object keys are the names, under an optional prefix."""

    kind = "s3"

    def __init__(self, *, bucket: str, endpoint_url: str = "", region: str = "", access_key: str = "",
                 secret_key: str = "", prefix: str = "", addressing_style: str = ""):
        from botocore.config import Config
        from storages.backends.s3 import S3Storage

        config = Config(s3={"addressing_style": addressing_style} if addressing_style else {},
                        retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=5, read_timeout=30,
                        max_pool_connections=20)
        self.storage = S3Storage(bucket_name=bucket, endpoint_url=endpoint_url or None, region_name=region or None,
                                 access_key=access_key or None, secret_key=secret_key or None,
                                 location=prefix.strip("/"), client_config=config, file_overwrite=True)
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""

    @property
    def client(self):
        return self.storage.connection.meta.client  # one per thread (django-storages keeps them)

    def key(self, name: str) -> str:
        return self.prefix + _checked(name)

    def write(self, name: str, sealed: bytes) -> None:
        with _answering():
            self.client.put_object(Bucket=self.bucket, Key=self.key(name), Body=sealed)

    def writer(self, name: str) -> "S3Writer":
        return S3Writer(self, self.key(name))

    def read(self, name: str) -> bytes:
        return self._get(self.key(name))["Body"].read()

    def _get(self, key: str, **kwargs) -> dict:
        from botocore.exceptions import ClientError

        try:
            with _answering():
                return self.client.get_object(Bucket=self.bucket, Key=key, **kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError("no such media file") from None
            raise

    def open(self, name: str) -> "S3RangeFile":
        return S3RangeFile(self, self.key(name))

    def head(self, name: str, size: int) -> bytes:
        return self._get(self.key(name), Range=f"bytes=0-{size - 1}")["Body"].read()

    def exists(self, name: str) -> bool:
        with _answering():
            return self.storage.exists(_checked(name))  # HeadObject on this thread's client; 404 is False

    def delete(self, name: str) -> None:
        # On this thread's client (S3Storage.delete goes through a bucket resource shared by
        # threads); deleting a missing key is not an error in S3.
        with _answering():
            self.client.delete_object(Bucket=self.bucket, Key=self.key(name))

    def names(self):
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        with _answering():
            pages = list(pages)
        for page in pages:
            for entry in page.get("Contents", []):
                name = entry["Key"][len(self.prefix):]
                if NAME.match(name):
                    yield name

    def reachable(self) -> None:
        """Raises unless the bucket answers (readiness)."""
        with _answering():
            self.client.head_bucket(Bucket=self.bucket)


class S3Writer:
    """Ciphertext buffered up to one part; a small file is one PUT, a large one a multipart
    upload of PART_BYTES parts (about one part in memory). The object exists only
    once finish() completes it; abort() leaves nothing behind."""

    def __init__(self, objects: S3Objects, key: str):
        self._objects, self._key = objects, key
        self._buffer, self._upload, self._parts = bytearray(), None, []

    def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) > PART_BYTES:  # the last part is never empty
            self._part(bytes(self._buffer[:PART_BYTES]))
            del self._buffer[:PART_BYTES]

    def _part(self, body: bytes) -> None:
        with _answering():
            self._send_part(body)

    def _send_part(self, body: bytes) -> None:
        client = self._objects.client
        if self._upload is None:
            self._upload = client.create_multipart_upload(Bucket=self._objects.bucket, Key=self._key)["UploadId"]
        number = len(self._parts) + 1
        answer = client.upload_part(Bucket=self._objects.bucket, Key=self._key, UploadId=self._upload,
                                    PartNumber=number, Body=body)
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def finish(self) -> None:
        with _answering():
            self._finish()

    def _finish(self) -> None:
        client = self._objects.client
        if self._upload is None:
            client.put_object(Bucket=self._objects.bucket, Key=self._key, Body=bytes(self._buffer))
        else:
            self._part(bytes(self._buffer))
            client.complete_multipart_upload(Bucket=self._objects.bucket, Key=self._key, UploadId=self._upload,
                                             MultipartUpload={"Parts": self._parts})
        self._buffer = bytearray()

    def abort(self) -> None:
        if self._upload is not None:
            with contextlib.suppress(StoreUnavailable), _answering():  # the bucket's lifecycle rule cleans up
                self._objects.client.abort_multipart_upload(Bucket=self._objects.bucket, Key=self._key,
                                                        UploadId=self._upload)
        self._buffer, self._upload = bytearray(), None


class S3RangeFile(io.RawIOBase):
    """A read-only, seekable view of one object: every read is one ranged GET, so a reader
    that takes a chunk at a time never holds the whole object."""

    def __init__(self, objects: S3Objects, key: str):
        self._objects, self._key, self._pos, self._size = objects, key, 0, None

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self._pos

    @property
    def size(self) -> int:
        if self._size is None:
            self._size = self._objects._get(self._key, Range="bytes=0-0")["ContentRange"].rsplit("/", 1)[1]
            self._size = int(self._size)
        return self._size

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: None}[whence]
        self._pos = max(0, (self.size if base is None else base) + offset)
        return self._pos

    def read(self, size=-1):
        if size is None or size < 0:
            size = self.size - self._pos
        if size == 0 or (self._size is not None and self._pos >= self._size):
            return b""
        answer = self._objects._get(self._key, Range=f"bytes={self._pos}-{self._pos + size - 1}")
        self._size = int(answer["ContentRange"].rsplit("/", 1)[1])
        data = answer["Body"].read()
        self._pos += len(data)
        return data

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
