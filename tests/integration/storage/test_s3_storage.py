"""S3 storage against a real S3-compatible server (moto in server mode on loopback)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from headless_wan.config import Settings
from headless_wan.domain.tasks import NewTask, TaskResult
from headless_wan.errors import TransientError
from headless_wan.media.fetch import fetch
from headless_wan.queue.sqlite import SqliteQueue
from headless_wan.storage.base import output_key
from headless_wan.storage.s3 import S3Storage
from headless_wan.wiring import build_url_policy
from tests.s3_support import SECRET_KEY, S3Server, s3_server


@pytest.fixture(scope="module")
def server() -> Iterator[S3Server]:
    with s3_server() as running:
        yield running


def _file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_put_returns_a_url_another_machine_can_fetch(server: S3Server, tmp_path: Path) -> None:
    bucket = server.new_bucket()
    storage = S3Storage(server.config(bucket, prefix="/fleet-a/"))
    url = storage.put(_file(tmp_path, "seg.mp4", "segment 0"), "tasks/t1/seg.mp4")
    assert url.startswith(server.endpoint_url) and "Signature" in url  # presigned: no bucket policy needed
    assert server.keys(bucket) == ["fleet-a/tasks/t1/seg.mp4"]
    # The stitch on another machine reads inputs with the ordinary URL fetcher, no credentials, under the
    # URL policy its settings give it: the fleet's S3 endpoint is allowed although it is on loopback here.
    policy = build_url_policy(Settings(s3_endpoint_url=server.endpoint_url))
    fetched = fetch(url, tmp_path / "elsewhere", max_mb=1, timeout_s=10, policy=policy)
    assert fetched.read_text() == "segment 0" and fetched.name == "seg.mp4"
    head = server.client().head_object(Bucket=bucket, Key="fleet-a/tasks/t1/seg.mp4")
    assert head["ContentType"] == "video/mp4"


def test_a_rerun_overwrites_the_same_object(server: S3Server, tmp_path: Path) -> None:
    bucket = server.new_bucket()
    storage = S3Storage(server.config(bucket))
    key = output_key("4b0c7d1e-0000-4000-8000-000000000001", "out.mp4")
    storage.put(_file(tmp_path, "a.mp4", "first run"), key)
    url = storage.put(_file(tmp_path, "b.mp4", "second run"), key)
    assert server.keys(bucket) == [key]
    assert httpx.get(url).text == "second run"


def test_public_base_url_gives_permanent_urls(server: S3Server, tmp_path: Path) -> None:
    bucket = server.new_bucket()
    storage = S3Storage(server.config(bucket, public_base_url=f"{server.endpoint_url}/{bucket}/", prefix="p"))
    url = storage.put(_file(tmp_path, "my clip.mp4", "clip"), "tasks/t2/my clip.mp4")
    assert url == f"{server.endpoint_url}/{bucket}/p/tasks/t2/my%20clip.mp4"
    assert httpx.get(url).status_code == 403  # the server does enforce access...
    public_read = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
            }
        ],
    }
    server.client().put_bucket_policy(Bucket=bucket, Policy=json.dumps(public_read))
    assert httpx.get(url).text == "clip"  # ...so this URL works once the bucket is public, as documented


def test_upload_failures_are_transient_and_keep_secrets_out(server: S3Server, tmp_path: Path) -> None:
    storage = S3Storage(server.config("no-such-bucket"))
    with pytest.raises(TransientError, match="no-such-bucket") as failure:
        storage.put(_file(tmp_path, "x.txt", "x"), "tasks/t3/x.txt")
    assert SECRET_KEY not in str(failure.value) and SECRET_KEY not in repr(storage.config)


def test_queue_completion_publishes_to_the_bucket(server: S3Server, tmp_path: Path) -> None:
    bucket = server.new_bucket()
    with SqliteQueue(tmp_path / "q.sqlite3", S3Storage(server.config(bucket))) as queue:
        task_id = queue.enqueue(NewTask("echo", {"message": "hi"}))
        claim = queue.claim("w1")
        assert claim is not None
        done = queue.complete(
            claim,
            TaskResult(output=_file(tmp_path, "out.txt", "hi"), thumbnail=_file(tmp_path, "t.jpg", "j")),
        )
    assert sorted(server.keys(bucket)) == [f"tasks/{task_id}/out.txt", f"tasks/{task_id}/t.jpg"]
    assert httpx.get(done.output_location or "").text == "hi"


def test_doctor_heads_the_bucket(server: S3Server) -> None:
    from headless_wan import doctor
    from headless_wan.config import Settings

    bucket = server.new_bucket()
    ok = doctor.storage_check(Settings(**{k[3:].lower(): v for k, v in server.env(bucket).items()}))
    assert ok.level is doctor.Level.OK and bucket in ok.detail
    missing = Settings(**{k[3:].lower(): v for k, v in server.env("hw-no-such-bucket").items()})
    failed = doctor._guarded("storage", lambda: doctor.storage_check(missing))
    assert failed.level is doctor.Level.FAIL and SECRET_KEY not in failed.detail
