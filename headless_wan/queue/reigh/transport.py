"""HTTP to Reigh: edge functions, the PostgREST RPC and table reads, and signed-URL uploads.

- Every call has its own timeout (`ReighOptions.timeouts`, the predecessor's values by default).
- Retries (exponential backoff with jitter) happen only on 502/503/504, timeouts and connection
  errors, and only for calls that are safe to repeat. `complete_task` is not (each call creates a
  generation), so callers pass `retry=False` and resolve an ambiguous outcome themselves.
- Error bodies are mostly plain text; messages keep a short, scrubbed excerpt. No message, log line
  or repr ever carries the credential or a signed URL: URLs are never put in messages, and every
  known secret is replaced before any server text is shown.
- Construction does no I/O (the worker builds two queues, one for its heartbeat thread); the HTTP
  client is created in `open()`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from headless_wan.errors import ConfigError, HeadlessWanError, QueueUnavailable, TransientError
from headless_wan.queue.reigh.options import ReighOptions
from headless_wan.queue.reigh.wire import TASKS_TABLE, Fn
from headless_wan.safety import redact_url

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({502, 503, 504})
MAX_ERROR_CHARS = 300
CHUNK_BYTES = 1024 * 1024
_AUTH_FAILURES = (
    "Invalid or expired token",
    "Missing or invalid Authorization",
    "Service role authentication",
)


class _RedactRequestUrls(logging.Filter):
    """httpx logs each request's full URL at INFO; signed upload URLs carry a token in the query.
    The CLI already keeps httpx at WARNING, but an embedding application may not."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(redact_url(str(a)) if isinstance(a, httpx.URL) else a for a in record.args)
        return True


if not any(isinstance(f, _RedactRequestUrls) for f in logging.getLogger("httpx").filters):
    logging.getLogger("httpx").addFilter(_RedactRequestUrls())


class ReighHTTPError(HeadlessWanError):
    """Reigh answered with an error status."""

    def __init__(self, what: str, status: int, detail: str) -> None:
        shown = _readable(detail)
        super().__init__(
            f"Reigh {what} answered HTTP {status}: {shown}" if shown else f"Reigh {what}: HTTP {status}"
        )
        self.what = what
        self.status = status
        self.detail = detail  # the scrubbed body excerpt, for callers that look into it


class ReighServerError(TransientError, ReighHTTPError):
    """Reigh failed internally (HTTP 5xx); the same call may succeed later."""


class ReighUnavailable(QueueUnavailable):
    """Reigh could not be reached (timeouts, connection errors or 502/503/504), retries included.

    `maybe_applied` is True when the request may have reached the server: a non-idempotent call
    (complete_task, a claim) must then find out what happened before it is repeated."""

    def __init__(self, message: str, *, maybe_applied: bool) -> None:
        super().__init__(message)
        self.maybe_applied = maybe_applied


@dataclass(frozen=True)
class Reply:
    status: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text) if self.text else None


class _Retryable(Exception):
    def __init__(self, reason: str, *, maybe_applied: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.maybe_applied = maybe_applied


class ReighTransport:
    def __init__(self, options: ReighOptions) -> None:
        self._options = options
        self._client: httpx.Client | None = None
        self._secrets: set[str] = {options.token.get_secret_value()}

    def __repr__(self) -> str:
        mode = "service-role" if self._options.service_role else "PAT"
        return f"ReighTransport({self._options.base_url!r}, {mode})"

    # --- lifecycle -----------------------------------------------------------------------------

    def open(self) -> None:
        if self._client is None:
            self._client = httpx.Client(follow_redirects=False, headers={"User-Agent": "headless_wan"})

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self.open()
        assert self._client is not None
        return self._client

    def remember_secret(self, value: str) -> None:
        """Signed upload URLs carry tokens: scrub them from anything shown from now on."""
        if value:
            self._secrets.add(value)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, "***")
        text = " ".join(text.split())
        return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"

    # --- calls ---------------------------------------------------------------------------------

    def call(
        self, fn: Fn, body: Mapping[str, Any], *, retry: bool = True, accept: Collection[int] = ()
    ) -> Reply:
        """POST an edge function. 2xx and `accept` statuses are returned; others raise."""
        return self._send(
            fn.value,
            "POST",
            self._options.function_url(fn),
            self._options.timeout(fn.value),
            retry=retry,
            accept=accept,
            headers=self._auth(postgrest=False),
            json_body=body,
        )

    def rpc(self, name: str, body: Mapping[str, Any]) -> Reply:
        self._require_service_role(name)
        url = f"{self._options.base_url.rstrip('/')}/rest/v1/rpc/{name}"
        return self._send(
            name,
            "POST",
            url,
            self._options.timeout("heartbeat"),
            headers=self._auth(postgrest=True),
            json_body=body,
        )

    def select(self, query: Mapping[str, str], *, table: str = TASKS_TABLE) -> Any:
        """A PostgREST read (service role only). Returns the decoded JSON array."""
        self._require_service_role(f"reading {table}")
        url = f"{self._options.base_url.rstrip('/')}/rest/v1/{table}"
        reply = self._send(
            f"read of {table}",
            "GET",
            url,
            self._options.timeout("postgrest"),
            headers=self._auth(postgrest=True),
            params=dict(query),
        )
        return reply.json()

    def put_file(
        self, url: SecretStr, path: Path, content_type: str, *, timeout_name: str, what: str
    ) -> Reply:
        """Raw PUT of a file, streamed from disk, to a signed URL. Any status is returned (the
        caller decides what "already exists" means); transient failures are retried."""
        size = path.stat().st_size
        headers = {"Content-Type": content_type, "Content-Length": str(size)}
        return self._send(
            what,
            "PUT",
            url.get_secret_value(),
            self._options.timeout(timeout_name),
            headers=headers,
            content_from=path,
            accept=range(100, 600),
        )

    # --- internals -----------------------------------------------------------------------------

    def _auth(self, *, postgrest: bool) -> dict[str, str]:
        token = self._options.token.get_secret_value()
        headers = {"Authorization": f"Bearer {token}"}
        if postgrest:  # PostgREST wants the key twice; edge functions ignore `apikey`
            headers["apikey"] = token
        return headers

    def _require_service_role(self, what: str) -> None:
        if not self._options.service_role:
            raise ConfigError(
                f"Reigh {what} needs the service-role key (SUPABASE_SERVICE_ROLE_KEY); "
                "a personal access token cannot use it."
            )

    def _send(
        self,
        what: str,
        method: str,
        url: str,
        timeout_s: float,
        *,
        headers: Mapping[str, str],
        retry: bool = True,
        accept: Collection[int] = (),
        json_body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        content_from: Path | None = None,
    ) -> Reply:
        def attempt() -> Reply:
            try:
                response = self.client.request(
                    method,
                    url,
                    headers=headers,
                    json=json_body,
                    params=params,
                    content=_chunks(content_from) if content_from is not None else None,
                    timeout=httpx.Timeout(timeout_s),
                )
            except httpx.TimeoutException:
                raise _Retryable(f"no answer within {timeout_s:g} s", maybe_applied=True) from None
            except httpx.ConnectError:
                raise _Retryable("connection failed", maybe_applied=False) from None
            except httpx.TransportError as exc:  # connection dropped mid-request: outcome unknown
                raise _Retryable(f"connection lost ({type(exc).__name__})", maybe_applied=True) from None
            if response.status_code in RETRY_STATUSES:
                raise _Retryable(f"HTTP {response.status_code}", maybe_applied=True)
            return Reply(response.status_code, response.text)

        try:
            reply = self._retrying(retry)(attempt)
        except _Retryable as exc:
            # `from None`: the httpx exception (and its request URL) must not reach any traceback.
            raise ReighUnavailable(
                f"Reigh {what} unavailable: {exc.reason}", maybe_applied=exc.maybe_applied
            ) from None
        if 200 <= reply.status < 300 or reply.status in accept:
            return reply
        raise self._error(what, reply)

    def _retrying(self, retry: bool) -> Retrying:
        return Retrying(
            stop=stop_after_attempt(max(1, self._options.retry_attempts) if retry else 1),
            wait=wait_exponential_jitter(  # jitter as large as the first delay spreads a fleet's retries
                multiplier=self._options.retry_backoff_s,
                max=self._options.retry_backoff_max_s,
                jitter=self._options.retry_backoff_s,
            ),
            retry=retry_if_exception_type(_Retryable),
            reraise=True,
            before_sleep=lambda state: logger.warning(
                "reigh call failed (%s); retrying",
                state.outcome.exception() if state.outcome else "?",
                extra={"action": "reigh_retry"},
            ),
        )

    def _error(self, what: str, reply: Reply) -> HeadlessWanError:
        detail = self.scrub(reply.text)
        if reply.status == 401 or (reply.status == 403 and any(m in reply.text for m in _AUTH_FAILURES)):
            return ConfigError(f"Reigh refused the credentials for {what} (HTTP {reply.status}): {detail}")
        if reply.status >= 500:
            return ReighServerError(what, reply.status, detail)
        return ReighHTTPError(what, reply.status, detail)


def _readable(detail: str) -> str:
    """2026-04's JSON error envelope `{error, errorCode, message, recoverable}` shown as
    "message (errorCode)"; any other body as it came."""
    try:
        data = json.loads(detail)
    except ValueError:
        return detail
    if isinstance(data, dict) and isinstance(data.get("message"), str) and data.get("errorCode"):
        return f"{data['message']} ({data['errorCode']})"
    return detail


def _chunks(path: Path) -> Iterator[bytes]:
    """A fresh reader per attempt, so a retried upload sends the whole file again."""
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk
