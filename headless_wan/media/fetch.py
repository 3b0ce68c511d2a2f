"""Download task inputs (images, videos, LoRAs) into the task's work directory.

Rules:
- Only http(s) URLs; other schemes (file:, ftp:, data:, ...) are rejected as invalid parameters. Local paths are
  accepted only when the caller allows them (`run task.json`, tests), and are copied into `dest_dir`.
- The result always lies in `dest_dir`, under a sanitised name, and appears only once complete (temp + rename).
- Size is limited before (Content-Length) and during the download; time is limited overall, retries included.
- 401/403/404/410 and other client errors are terminal (`InputUnavailable`); 5xx, 408, 429, timeouts and
  connection failures are retried with exponential backoff and jitter, then reported as `TransientError`.
- Query strings and user info often carry tokens (signed URLs), so messages and logs show URLs without them.
- Every connection, redirects included, goes through the outbound URL policy (`url_policy`): hosts that
  resolve to loopback, private, link-local or other non-public addresses are refused unless allowed.
"""

from __future__ import annotations

import logging
import posixpath
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_any

from headless_wan.errors import InputUnavailable, InvalidTaskParams, TransientError
from headless_wan.media import url_policy
from headless_wan.media.files import atomic_path
from headless_wan.media.url_policy import UrlPolicy, UrlRefused

# Also importable from here: handlers name them through the media layer they already use for downloads.
from headless_wan.safety import redact_url, safe_filename

logger = logging.getLogger(__name__)

_HUB_HOSTS = frozenset({"huggingface.co", "hf.co"})
_TERMINAL_STATUSES = frozenset({401, 403, 404, 410})
_RETRY_STATUSES = frozenset({408, 425, 429})
_USER_AGENT = "headless_wan"


class _Retryable(Exception):
    """A failure worth another attempt; `reason` is safe to show (no URL)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def rewrite_hub_url(url: str) -> str:
    """Turn a Hugging Face Hub page URL (`.../blob/<rev>/<file>`) into its download URL (`.../resolve/...`).

    Users paste the page link; it serves HTML, not the file. Other hosts are returned unchanged.
    """
    parts = urlsplit(url)
    if (parts.hostname or "").lower() not in _HUB_HOSTS or "/blob/" not in parts.path:
        return url
    return urlunsplit(parts._replace(path=parts.path.replace("/blob/", "/resolve/", 1)))


def fetch(
    source: str,
    dest_dir: Path,
    *,
    max_mb: float,
    timeout_s: float,
    allow_local: bool = False,
    filename: str | None = None,
    retries: int = 3,
    backoff_s: float = 0.5,
    policy: UrlPolicy | None = None,
) -> Path:
    """Download `source` (http/https URL) into `dest_dir` and return the file's path.

    `max_mb` is in MiB. `timeout_s` bounds the whole call, retries and backoff included. `filename` overrides
    the name taken from the URL path; either is passed through `safe_filename`. An existing file of that name
    is replaced. Safe to re-run. `policy` decides which hosts may be reached (default: the one the
    composition root installed, see `url_policy.install`).

    Raises InvalidTaskParams (unsupported scheme, local path not allowed, malformed URL, a host the policy
    refuses: `UrlRefused`), InputUnavailable
    (missing or forbidden, client errors, too large) or TransientError (server errors, timeouts, network
    failures after `retries` extra attempts).
    """
    if max_mb <= 0 or timeout_s <= 0 or retries < 0:
        raise ValueError("max_mb and timeout_s must be positive and retries non-negative")
    source = source.strip()
    parts = _split(source)
    scheme = parts.scheme.lower()
    max_bytes = int(max_mb * 1024 * 1024)
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise InvalidTaskParams(f"input URL has no host: {redact_url(source)}")
        url = rewrite_hub_url(source)
        name = safe_filename(filename or posixpath.basename(urlsplit(url).path), default="download")
        dest_dir.mkdir(parents=True, exist_ok=True)
        guard = policy or url_policy.installed()
        return _download(url, dest_dir / name, max_bytes, timeout_s, retries, backoff_s, guard)
    if scheme or parts.netloc:
        shown = f"'{scheme}:'" if scheme else "without a scheme"
        raise InvalidTaskParams(f"unsupported input URL {shown}: only http:// and https:// URLs are accepted")
    if not source:
        raise InvalidTaskParams("empty input URL")
    if not allow_local:
        raise InvalidTaskParams("local file paths are not accepted as task inputs; pass an http(s) URL")
    return _copy_local(Path(source), dest_dir, filename, max_bytes)


def _split(source: str) -> SplitResult:
    try:
        parts = urlsplit(source)
        _ = parts.port  # validates the port too
    except ValueError:
        raise InvalidTaskParams("malformed input URL") from None
    return parts


def _copy_local(source: Path, dest_dir: Path, filename: str | None, max_bytes: int) -> Path:
    if not source.is_file():
        raise InputUnavailable(f"input file not found: {source}")
    size = source.stat().st_size
    if size > max_bytes:
        raise InputUnavailable(f"input file {source.name} is {_mib(size)}, over the {_mib(max_bytes)} limit")
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / safe_filename(filename or source.name, default="input")
    if dest.exists() and dest.resolve() == source.resolve():
        return dest
    with atomic_path(dest) as tmp:
        shutil.copyfile(source, tmp)
    return dest


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.2f} MiB"


def _download(
    url: str, dest: Path, max_bytes: int, timeout_s: float, retries: int, backoff_s: float, policy: UrlPolicy
) -> Path:
    shown = redact_url(url)
    deadline = time.monotonic() + timeout_s
    retrying = Retrying(
        retry=retry_if_exception_type(_Retryable),
        stop=stop_any(stop_after_attempt(retries + 1), lambda _: time.monotonic() >= deadline),
        wait=_bounded_wait(backoff_s, deadline),
        before_sleep=_log_retry(shown),
        reraise=True,
    )
    started = time.monotonic()
    size = 0
    try:
        with (
            atomic_path(dest) as tmp,
            httpx.Client(
                follow_redirects=True,
                headers={"User-Agent": _USER_AGENT},
                transport=url_policy.guarded_transport(policy),
                trust_env=False,
            ) as client,
        ):
            for attempt in retrying:
                with attempt:
                    size = _attempt(client, url, tmp, max_bytes, deadline, shown)
    except _Retryable as exc:
        raise TransientError(f"could not download {shown}: {exc.reason}") from None
    logger.info(
        "downloaded %s (%d bytes)",
        shown,
        size,
        extra={"action": "fetch_done", "url": shown, "bytes": size, "elapsed_s": time.monotonic() - started},
    )
    return dest


def _bounded_wait(backoff_s: float, deadline: float) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        # Exponential backoff with full jitter so a fleet of workers does not retry in lockstep; never sleep
        # past the overall deadline (the stop condition then ends the retries).
        exponential = min(backoff_s * 2 ** (state.attempt_number - 1), backoff_s * 16)
        delay = exponential + random.uniform(0, backoff_s)
        return max(0.0, min(delay, deadline - time.monotonic()))

    return wait


def _log_retry(shown: str) -> Callable[[RetryCallState], None]:
    def log(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        reason = getattr(error, "reason", type(error).__name__)
        logger.warning(
            "download of %s failed (%s), retrying",
            shown,
            reason,
            extra={"action": "fetch_retry", "url": shown, "attempt": state.attempt_number, "reason": reason},
        )

    return log


def _attempt(client: httpx.Client, url: str, tmp: Path, max_bytes: int, deadline: float, shown: str) -> int:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _Retryable("time limit reached")
    try:
        with client.stream("GET", url, timeout=httpx.Timeout(remaining)) as response:
            _check_response(response, max_bytes, shown)
            return _save_body(response, tmp, max_bytes, deadline, shown)
    except UrlRefused as exc:
        raise UrlRefused(f"input URL {shown} refused: {exc}") from None
    except httpx.TimeoutException:
        raise _Retryable(f"no response within the {remaining:.1f} s left") from None
    except httpx.UnsupportedProtocol:
        raise InputUnavailable(f"{shown} redirected to an unsupported URL") from None
    except httpx.TooManyRedirects:
        raise InputUnavailable(f"{shown}: too many redirects") from None
    except httpx.DecodingError:
        raise InputUnavailable(f"{shown} sent a body that could not be decoded") from None
    except httpx.InvalidURL:
        raise InvalidTaskParams(f"malformed input URL {shown}") from None
    except httpx.TransportError as exc:
        raise _Retryable(f"{type(exc).__name__}: {_scrub(str(exc), url)}") from None


def _scrub(message: str, url: str) -> str:
    query = urlsplit(url).query
    return message.replace(query, "<redacted>") if query else message


def _check_response(response: httpx.Response, max_bytes: int, shown: str) -> None:
    status = response.status_code
    if status >= 500 or status in _RETRY_STATUSES:
        raise _Retryable(f"HTTP {status}")
    if status in _TERMINAL_STATUSES or status >= 300:
        raise InputUnavailable(f"{shown} returned HTTP {status} {response.reason_phrase}".rstrip())
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise InputUnavailable(f"{shown} is {_mib(int(length))}, over the {_mib(max_bytes)} download limit")


def _save_body(response: httpx.Response, tmp: Path, max_bytes: int, deadline: float, shown: str) -> int:
    size = 0
    with tmp.open("wb") as out:
        # No chunk_size: httpx would buffer up to it, and a trickling server would never reach the deadline check.
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise InputUnavailable(f"{shown} is over the {_mib(max_bytes)} download limit")
            if time.monotonic() > deadline:
                raise _Retryable("download exceeded its time limit")
            out.write(chunk)
    return size
