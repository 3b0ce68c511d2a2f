"""S3-compatible storage (AWS S3, MinIO, R2, ...): the shared output store of a fleet.

Outputs go to `<prefix>/tasks/<task id>/<file>` (see `base.output_key`), so a re-run overwrites the
same object instead of adding another. `put` returns an http(s) URL, not `s3://`: every reader
then fetches it like any other input URL (`media.fetch` accepts http/https only), including a
stitch running on another machine without bucket credentials, and the browser of a Reigh-style
front end. With `public_base_url` the URL is permanent (a public bucket or a CDN in front of it);
without, it is a presigned GET URL valid for `url_expiry_s` (7 days at most on AWS), and the
recorded `output_location` stops working when it expires: prefer a public base URL for anything
kept longer. A presigned URL is a credential while it lasts: the worker logs it only with its query
(the signature) cut off (`worker.finishing.loggable`).
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
from boto3.exceptions import Boto3Error
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from headless_wan.errors import UploadError

MAX_PRESIGN_S = 7 * 24 * 3600


@dataclass(frozen=True)
class S3Config:
    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None  # None = AWS itself
    region: str | None = None
    access_key_id: str | None = None  # None = boto3's own chain (AWS_* variables, profile, role)
    secret_access_key: str | None = field(default=None, repr=False)  # never logged
    public_base_url: str | None = None
    url_expiry_s: int = MAX_PRESIGN_S


class S3Storage:
    def __init__(self, config: S3Config, client: Any | None = None) -> None:
        if not config.bucket:
            raise ValueError("S3 storage needs a bucket name")
        self.config = config
        self._client = client or make_client(config)

    def put(self, local_path: Path, key: str) -> str:
        full_key = self.full_key(key)
        content_type = mimetypes.guess_type(local_path.name)[0] or "application/octet-stream"
        try:
            # One object per key: S3 PUT replaces atomically, so readers never see half a file.
            self._client.upload_file(
                str(local_path), self.config.bucket, full_key, ExtraArgs={"ContentType": content_type}
            )
        except (Boto3Error, BotoCoreError, ClientError) as exc:
            raise UploadError(
                f"Uploading {local_path.name} to bucket {self.config.bucket} failed: {exc}"
            ) from exc
        return self.url_for(full_key)

    def check(self) -> str:
        """HEAD the bucket: reachable and the credentials may see it. Raises UploadError."""
        try:
            self._client.head_bucket(Bucket=self.config.bucket)
        except (Boto3Error, BotoCoreError, ClientError) as exc:
            raise UploadError(f"Bucket {self.config.bucket} is not reachable: {exc}") from exc
        return f"bucket {self.config.bucket} reachable"

    def full_key(self, key: str) -> str:
        prefix = self.config.prefix.strip("/")
        return f"{prefix}/{key}" if prefix else key

    def url_for(self, full_key: str) -> str:
        """Where readers fetch the object: public URL when configured, else a presigned GET."""
        if self.config.public_base_url:
            return f"{self.config.public_base_url.rstrip('/')}/{quote(full_key)}"
        try:
            return str(
                self._client.generate_presigned_url(
                    "get_object",
                    Params={"Bucket": self.config.bucket, "Key": full_key},
                    ExpiresIn=min(self.config.url_expiry_s, MAX_PRESIGN_S),
                )
            )
        except (BotoCoreError, ClientError) as exc:
            raise UploadError(f"Could not sign a URL for {full_key}: {exc}") from exc


def make_client(config: S3Config) -> Any:
    # Path-style addressing for custom endpoints: MinIO and most self-hosted servers need it.
    style = "path" if config.endpoint_url else "auto"
    return boto3.session.Session().client(
        "s3",
        endpoint_url=config.endpoint_url,
        region_name=config.region or "us-east-1",
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": style},
            retries={"max_attempts": 5, "mode": "standard"},
        ),
    )
