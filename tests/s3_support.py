"""A real S3-compatible server for tests: moto's server mode on a free loopback port.

Everything goes over HTTP through boto3 exactly as it would against AWS or MinIO; no mocks.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from moto.server import ThreadedMotoServer

from headless_wan.storage.s3 import S3Config, make_client

ACCESS_KEY = "testing-key"
SECRET_KEY = "testing-secret"


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    def config(self, bucket: str, **overrides: Any) -> S3Config:
        settings: dict[str, Any] = {
            "bucket": bucket,
            "endpoint_url": self.endpoint_url,
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
            **overrides,
        }
        return S3Config(**settings)

    def client(self) -> Any:
        return make_client(self.config("unused"))

    def new_bucket(self) -> str:
        name = f"hw-test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        keys: list[str] = []
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def env(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """Settings that point a worker process at this server."""
        return {
            "HW_STORAGE": "s3",
            "HW_S3_BUCKET": bucket,
            "HW_S3_PREFIX": prefix,
            "HW_S3_ENDPOINT_URL": self.endpoint_url,
            "HW_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "HW_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        }


@contextmanager
def s3_server() -> Iterator[S3Server]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()
