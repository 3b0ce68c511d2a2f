"""LoRA files and adapters.

Files: a LoRA is a local path or an http(s) URL. URLs are downloaded once into the LoRA cache
directory under a name derived from the URL (so the same URL is never fetched twice) through a
`fetch` function the caller supplies (the handlers pass `headless_wan.media.fetch.fetch`; the engine
does no network I/O of its own). A file must carry a safetensors header.

Adapters: the adapter name is a stable hash of the source, so a LoRA keeps its adapter across tasks.
Each task diffs the wanted set against what is loaded: missing adapters are loaded (into the experts
whose steps use them), unused ones are deactivated and, past a cap, deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from headless_wan.errors import InputUnavailable, InvalidTaskParams

log = logging.getLogger(__name__)
_GENERIC_NAMES = {"high_noise_model.safetensors", "low_noise_model.safetensors", "model.safetensors"}
_SAFETENSORS_MAX_HEADER = 100 * 1024 * 1024
EXPERT_COMPONENTS = ("transformer", "transformer_2")


@dataclass(frozen=True)
class LoraSpec:
    """A LoRA a request asks for: `multiplier` uses the WGP grammar ("1.0", "1;0", "0.1,0.3,0.5")."""

    source: str
    multiplier: str = "1.0"


class FetchFn(Protocol):
    def __call__(
        self, source: str, dest_dir: Path, *, max_mb: float, timeout_s: float, filename: str | None = None
    ) -> Path: ...


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def normalise_source(source: str) -> str:
    """Hub page links (`/blob/`) point at HTML; the file itself is under `/resolve/`."""
    source = source.strip()
    if is_url(source) and "huggingface.co/" in source:
        source = source.replace("/blob/", "/resolve/", 1)
    return source


def adapter_name(source: str) -> str:
    return "lora_" + hashlib.sha256(normalise_source(source).encode()).hexdigest()[:16]


def cache_filename(url: str) -> str:
    """`<hash>_<name>`: the hash keeps different URLs apart, the name keeps logs readable.
    Generic Lightning names get their parent folder as a prefix (high/low noise files of
    different releases share names)."""
    parts = [unquote(p) for p in urlsplit(url).path.split("/") if p]
    name = parts[-1] if parts else "lora.safetensors"
    if name in _GENERIC_NAMES and len(parts) > 1:
        name = f"{parts[-2]}_{name}"
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "lora.safetensors"
    digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    return f"{digest}_{safe[:120]}"


def redact(source: str) -> str:
    """A source fit for logs and sidecars: signed URLs carry credentials in their query."""
    if is_url(source):
        parts = urlsplit(source)
        return f"{parts.scheme}://{parts.netloc}{parts.path}"
    return source


def resolve_lora_file(
    source: str,
    cache_dir: Path,
    *,
    fetch: FetchFn | None,
    max_mb: float,
    timeout_s: float,
) -> Path:
    """Local path of a LoRA, downloading a URL into the cache on first use."""
    source = normalise_source(source)
    if not is_url(source):
        path = Path(source).expanduser()
        if not path.is_file():
            raise InvalidTaskParams(f"loras: LoRA file not found: {source}")
        check_safetensors(path, source)
        return path
    cached = cache_dir / cache_filename(source)
    if not cached.is_file():
        if fetch is None:
            raise InputUnavailable(f"LoRA {redact(source)} is not cached and no downloader is configured")
        cache_dir.mkdir(parents=True, exist_ok=True)
        fetched = fetch(source, cache_dir, max_mb=max_mb, timeout_s=timeout_s, filename=cached.name)
        if fetched != cached:
            Path(fetched).replace(cached)
    try:
        check_safetensors(cached, redact(source))
    except InvalidTaskParams:
        cached.unlink(missing_ok=True)  # never serve a bad download twice
        raise
    return cached


def check_safetensors(path: Path, label: str) -> None:
    """Cheap format check: 8-byte little-endian header length, then a JSON object."""
    with path.open("rb") as handle:
        head = handle.read(8)
        if len(head) != 8:
            raise InvalidTaskParams(f"loras: {label} is not a safetensors file (too short)")
        (length,) = struct.unpack("<Q", head)
        if not 2 <= length <= _SAFETENSORS_MAX_HEADER:
            raise InvalidTaskParams(f"loras: {label} is not a safetensors file")
        try:
            header = json.loads(handle.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InvalidTaskParams(f"loras: {label} is not a safetensors file (bad header)") from None
    if not isinstance(header, dict):
        raise InvalidTaskParams(f"loras: {label} is not a safetensors file (bad header)")


@dataclass(frozen=True)
class WantedAdapter:
    name: str
    path: Path
    components: frozenset[str]


@dataclass
class AdapterState:
    """Adapters loaded into one cached pipeline (mutated only by `sync_adapters`)."""

    loaded: dict[str, frozenset[str]] = field(default_factory=dict)
    last_used: dict[str, int] = field(default_factory=dict)
    tasks_seen: int = 0


def sync_adapters(
    pipe: Any,
    state: AdapterState,
    wanted: Sequence[WantedAdapter],
    *,
    editing: Callable[[], Any],
    max_loaded: int,
) -> None:
    """Make every wanted adapter present in its components; delete stale ones past the cap.

    `editing()` returns a context manager under which adapters may be added or removed (it
    suspends whatever the memory profile did that LoRA loading must not see).
    """
    state.tasks_seen += 1
    missing = [w for w in wanted if not w.components <= state.loaded.get(w.name, frozenset())]
    wanted_names = {w.name for w in wanted}
    stale = sorted(
        (n for n in state.loaded if n not in wanted_names), key=lambda n: state.last_used.get(n, 0)
    )
    excess = stale[: max(0, len(state.loaded) + len(missing) - max_loaded)]
    if missing or excess:
        with editing():
            if excess:
                pipe.delete_adapters(excess)
                for name in excess:
                    state.loaded.pop(name, None)
            for item in missing:
                _load_adapter(pipe, state, item)
    for item in wanted:
        state.last_used[item.name] = state.tasks_seen


def _load_adapter(pipe: Any, state: AdapterState, item: WantedAdapter) -> None:
    present = state.loaded.get(item.name, frozenset())
    for component in sorted(item.components - present):
        with _diffusers_warnings() as warnings:
            try:
                pipe.load_lora_weights(
                    str(item.path),
                    adapter_name=item.name,
                    load_into_transformer_2=component == "transformer_2",
                )
            except (ValueError, KeyError, RuntimeError) as exc:
                raise InvalidTaskParams(f"loras: {item.path.name} does not fit this model: {exc}") from exc
        _check_injected(pipe, component, item, warnings)
        present = present | {component}
        state.loaded[item.name] = present


def _check_injected(pipe: Any, component: str, item: WantedAdapter, warnings: list[str]) -> None:
    """diffusers only warns when no key of a file matches the model (wrong prefix or layout) and
    the task would silently run without its LoRA: fail instead. Dropped keys are logged."""
    module = getattr(pipe, component, None)
    if item.name not in (getattr(module, "peft_config", None) or {}):
        detail = f" ({warnings[0][:300]})" if warnings else ""
        raise InvalidTaskParams(
            f"loras: {item.path.name} injects no layers into {component}: none of its keys match "
            f"this model{detail}"
        )
    for message in warnings:
        if "unexpected keys" in message or "not found" in message:
            log.warning(
                "LoRA %s: keys dropped for %s: %s",
                item.path.name,
                component,
                message[:2000],
                extra={"action": "lora_keys_dropped"},
            )


@contextlib.contextmanager
def _diffusers_warnings() -> Iterator[list[str]]:
    """Collect what diffusers logs while loading (its root logger does not propagate)."""
    messages: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage().strip())

    handler = _Collect(level=logging.WARNING)
    logger = logging.getLogger("diffusers")
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def set_adapter_weights(pipe: Any, state: AdapterState, weights: Mapping[str, float]) -> None:
    """Activate exactly the adapters in `weights` (name → weight for every expert holding it)."""
    if not state.loaded:
        return
    # Zero-weight adapters are deactivated rather than run at weight 0: same output, less work.
    names = [name for name, weight in weights.items() if weight != 0]
    if not names:
        pipe.disable_lora()
        return
    pipe.enable_lora()
    per_component = [{c: float(weights[n]) for c in state.loaded[n]} for n in names]
    pipe.set_adapters(names, adapter_weights=per_component)
