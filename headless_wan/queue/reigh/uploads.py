"""Turning a task's local output into a `complete_task` body (`reigh-contract.md` §3.2-§3.3).

- Small files (< `base64_max_bytes`, 2 MB by default) go inline, base64 (MODE 1), with the
  thumbnail as `first_frame_*`.
- Larger files: `generate-upload-url`, then a raw PUT streamed from disk (plus the thumbnail PUT),
  then MODE 3 with `storage_path`.
- Reigh's signed upload tokens refuse a second PUT to the same path, and asking again for a URL
  whose object already exists fails. So a retry after an uncertain upload uses a fresh, unique file
  name, and an "already exists" answer to our own PUT means our bytes arrived.
- File names are sanitised; the task id is never taken from the file name.
"""

from __future__ import annotations

import base64
import logging
import mimetypes
import secrets
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import SecretStr

from headless_wan.errors import UploadError
from headless_wan.queue.reigh.options import ReighOptions
from headless_wan.queue.reigh.transport import ReighTransport, Reply
from headless_wan.queue.reigh.wire import (
    PUBLIC_OBJECT_PREFIX,
    CompleteInline,
    CompleteStored,
    Fn,
    UploadUrlRequest,
    UploadUrlResponse,
)
from headless_wan.safety import safe_filename

logger = logging.getLogger(__name__)

CompletionBody = CompleteInline | CompleteStored
THUMBNAIL_TYPE = "image/jpeg"


def content_type(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def upload_filename(task_id: str, output: Path, *, fresh: bool) -> str:
    """The sanitised output name; with `fresh`, a random suffix makes it unique."""
    name = safe_filename(output.name, default=f"{task_id}{output.suffix}")
    if not fresh:
        return name
    path = PurePosixPath(name)
    return f"{path.stem}-{secrets.token_hex(3)}{path.suffix}"


def thumbnail_filename(task_id: str) -> str:
    return f"thumb_{safe_filename(task_id)[:8]}.jpg"


class Uploader:
    def __init__(self, transport: ReighTransport, options: ReighOptions) -> None:
        self._transport = transport
        self._options = options

    def prepare(
        self, task_id: str, output: Path, thumbnail: Path | None, *, fresh_name: bool
    ) -> CompletionBody:
        """Upload what needs uploading; return the body for the single `complete_task` call."""
        if not output.is_file():
            raise UploadError(f"The task's output file {output.name!r} is missing.")
        if output.stat().st_size < self._options.base64_max_bytes:
            return self._inline(task_id, output, thumbnail)
        return self._signed(task_id, output, thumbnail, fresh_name=fresh_name)

    def _inline(self, task_id: str, output: Path, thumbnail: Path | None) -> CompleteInline:
        has_thumb = thumbnail is not None and thumbnail.is_file()
        return CompleteInline(
            task_id=task_id,
            file_data=_b64(output),
            filename=upload_filename(task_id, output, fresh=False),
            first_frame_data=_b64(thumbnail) if has_thumb and thumbnail else None,
            first_frame_filename=thumbnail_filename(task_id) if has_thumb else None,
        )

    def _signed(
        self, task_id: str, output: Path, thumbnail: Path | None, *, fresh_name: bool
    ) -> CompleteStored:
        has_thumb = thumbnail is not None and thumbnail.is_file()
        request = UploadUrlRequest(
            task_id=task_id,
            filename=upload_filename(task_id, output, fresh=fresh_name),
            content_type=content_type(output),
            generate_thumbnail_url=True if has_thumb else None,
        )
        reply = self._transport.call(Fn.UPLOAD_URL, request.body())
        grant = UploadUrlResponse.model_validate(reply.json())
        self._remember(grant.upload_url)
        self._remember(grant.thumbnail_upload_url)
        self._put(grant.upload_url, output, request.content_type, "put", "output upload")
        thumb_path = None
        if has_thumb and thumbnail and grant.thumbnail_upload_url and grant.thumbnail_storage_path:
            try:
                self._put(
                    grant.thumbnail_upload_url, thumbnail, THUMBNAIL_TYPE, "thumbnail_put", "thumbnail upload"
                )
                thumb_path = grant.thumbnail_storage_path
            except UploadError as exc:  # a missing thumbnail is cosmetic; the output is what matters
                logger.warning("thumbnail not uploaded: %s", exc, extra={"action": "thumbnail_upload_failed"})
        return CompleteStored(
            task_id=task_id, storage_path=grant.storage_path, thumbnail_storage_path=thumb_path
        )

    def _put(self, url: SecretStr, path: Path, mime: str, timeout_name: str, what: str) -> None:
        try:
            reply = self._transport.put_file(url, path, mime, timeout_name=timeout_name, what=what)
        except UploadError:
            raise
        except Exception as exc:  # unreachable storage: the worker retries with a fresh name
            raise UploadError(f"The {what} failed: {exc}") from None
        if reply.status in (200, 201) or _already_exists(reply):
            return
        raise UploadError(f"The {what} failed: HTTP {reply.status}: {self._transport.scrub(reply.text)}")

    def _remember(self, url: SecretStr | None) -> None:
        if url is None:
            return
        raw = url.get_secret_value()
        self._transport.remember_secret(raw)
        for _, value in parse_qsl(urlsplit(raw).query):
            self._transport.remember_secret(value)


def _already_exists(reply: Reply) -> bool:
    """A retried PUT whose first attempt landed: the signed token refuses to overwrite."""
    text = reply.text.lower()
    return reply.status in (400, 409) and ("already exists" in text or "duplicate" in text)


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def storage_path_of(url: str, base_url: str) -> str | None:
    """The bucket path behind one of this project's public object URLs, else None.

    An orchestrator re-run that finds all its children done completes with a child's file
    (MODE 3 with the child's path), which it knows only as that child's `output_location`."""
    parts, base = urlsplit(url), urlsplit(base_url)
    if (parts.scheme, parts.netloc) != (base.scheme, base.netloc) or not parts.path.startswith(
        PUBLIC_OBJECT_PREFIX
    ):
        return None
    path = unquote(parts.path[len(PUBLIC_OBJECT_PREFIX) :])
    segments = path.split("/")
    if len(segments) < 2 or any(s in ("", ".", "..") for s in segments):
        return None
    return path
