"""Pure helpers for untrusted names and URLs: a safe file name, a URL fit for logs.

A leaf module (standard library only, nothing of ours): the queue adapters need both (upload names, redacted
request logs) and must not import `media`, which owns the download path and pulls in httpx.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

MAX_FILENAME_CHARS = 128
_MAX_SUFFIX_CHARS = 16
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._-]+")


def _sanitise(name: str) -> str:
    # Anything after a raw '?' or '#' is a query or fragment (possibly a token), never part of a file name.
    name = re.split(r"[?#]", name, maxsplit=1)[0]
    name = unquote(name).replace("\\", "/")
    name = name.rsplit("/", 1)[-1]
    decomposed = unicodedata.normalize("NFKD", name)
    name = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    name = _UNSAFE_RUN.sub("_", name).lstrip(".-")
    if len(name) > MAX_FILENAME_CHARS:
        suffix = Path(name).suffix
        suffix = suffix if 1 < len(suffix) <= _MAX_SUFFIX_CHARS else ""
        name = name[: MAX_FILENAME_CHARS - len(suffix)] + suffix
    return name


def safe_filename(name: str, default: str = "file") -> str:
    """A file name safe to create inside a directory.

    Drops any query/fragment and directory part (after URL-decoding once, so `%2e%2e%2f` cannot escape),
    strips accents, replaces every run of characters outside `[A-Za-z0-9._-]` with '_', removes leading dots
    and dashes (no hidden files, nothing that parses as an option) and bounds the length to
    MAX_FILENAME_CHARS, keeping the extension. Never empty, never '.' or '..': falls back to `default`
    (itself sanitised, then 'file').
    """
    return _sanitise(name) or _sanitise(default) or "file"


def redact_url(url: str) -> str:
    """scheme://host[:port]/path: the URL without user info, query string or fragment, for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
