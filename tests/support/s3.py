"""A real S3-protocol server for the suite: moto in server mode on loopback (the suite never
mocks boto3), and a path-like view of one bucket so that the media tests can look at what is
stored (`media_root / name`, `stored_files(media_root)`) the same way on both stores."""

import fnmatch
import logging
import uuid

import boto3

ACCESS_KEY, SECRET_KEY, REGION = "tsreview-test", "tsreview-test-secret", "us-east-1"


class MotoS3:
    def __init__(self):
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        self.client = boto3.client("s3", endpoint_url=self.endpoint_url, region_name=REGION,
                                   aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def new_bucket(self) -> str:
        bucket = f"tsr-{uuid.uuid4().hex[:20]}"
        self.client.create_bucket(Bucket=bucket)
        return bucket

    def settings(self, bucket: str) -> dict:
        """The settings (and environment variables) that point tsreview at one bucket."""
        return {"TSREVIEW_MEDIA_STORAGE": "s3", "TSREVIEW_S3_BUCKET": bucket, "TSREVIEW_S3_ENDPOINT_URL": self.endpoint_url,
                "TSREVIEW_S3_REGION": REGION, "TSREVIEW_S3_ACCESS_KEY_ID": ACCESS_KEY,
                "TSREVIEW_S3_SECRET_ACCESS_KEY": SECRET_KEY, "TSREVIEW_S3_PREFIX": "", "TSREVIEW_S3_ADDRESSING_STYLE": "path"}

    def stop(self):
        self._server.stop()


class S3Root:
    """The bucket as the tests' media_root: `root / name` is one object."""

    def __init__(self, client, bucket: str):
        self.client, self.bucket = client, bucket

    def __truediv__(self, name: str) -> "S3Path":
        return S3Path(self, str(name))

    def keys(self) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return sorted(entry["Key"] for page in pages for entry in page.get("Contents", []))

    def rglob(self, pattern: str) -> list["S3Path"]:
        return [self / key for key in self.keys() if fnmatch.fnmatch(key.rsplit("/", 1)[-1], pattern)]

    def exists(self) -> bool:
        return True

    def unfinished_uploads(self) -> list[str]:
        return [u["Key"] for u in self.client.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])]

    def __str__(self):
        return f"s3://{self.bucket}"


class S3Path:
    def __init__(self, root: S3Root, key: str):
        self.root, self.key = root, key

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.key.split("/"))

    def relative_to(self, root) -> "S3Path":
        return self

    def as_posix(self) -> str:
        return self.key

    def read_bytes(self) -> bytes:
        return self.root.client.get_object(Bucket=self.root.bucket, Key=self.key)["Body"].read()

    def exists(self) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.root.client.head_object(Bucket=self.root.bucket, Key=self.key)
            return True
        except ClientError:
            return False

    is_file = exists

    def __eq__(self, other):
        return isinstance(other, S3Path) and (self.root.bucket, self.key) == (other.root.bucket, other.key)

    def __lt__(self, other):
        return self.key < other.key

    def __hash__(self):
        return hash((self.root.bucket, self.key))

    def __repr__(self):
        return f"S3Path({self.key!r})"
