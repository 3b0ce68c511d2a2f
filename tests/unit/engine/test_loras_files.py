"""LoRA sources: cache names, safetensors check, download-once (fake fetch), adapter diffing."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from types import SimpleNamespace

import pytest

from headless_wan.engine.loras import (
    AdapterState,
    WantedAdapter,
    adapter_name,
    cache_filename,
    normalise_source,
    redact,
    resolve_lora_file,
    set_adapter_weights,
    sync_adapters,
)
from headless_wan.errors import InputUnavailable, InvalidTaskParams


def safetensors_bytes() -> bytes:
    header = json.dumps({"__metadata__": {}}).encode()
    return struct.pack("<Q", len(header)) + header


class FakeFetch:
    def __init__(self, body: bytes) -> None:
        self.body = body
        self.calls: list[str] = []

    def __call__(
        self, source: str, dest_dir: Path, *, max_mb: float, timeout_s: float, filename: str | None = None
    ):
        self.calls.append(source)
        path = dest_dir / (filename or "x")
        path.write_bytes(self.body)
        return path


def test_adapter_names_are_stable_hashes_of_the_source() -> None:
    url = "https://huggingface.co/org/repo/blob/main/lora.safetensors"
    assert adapter_name(url) == adapter_name(url.replace("/blob/", "/resolve/"))
    assert adapter_name(url).startswith("lora_") and adapter_name(url) != adapter_name(url + "x")
    assert normalise_source(url).endswith("/resolve/main/lora.safetensors")


def test_cache_filenames_are_safe_distinct_and_prefix_generic_names() -> None:
    a = cache_filename("https://h/x/Seko-V1/high_noise_model.safetensors")
    b = cache_filename("https://h/y/Seko-V2/high_noise_model.safetensors")
    assert a.endswith("_Seko-V1_high_noise_model.safetensors") and a != b
    weird = cache_filename("https://h/%2E%2E/..%2Fevil%20name.safetensors")
    assert "/" not in weird and " " not in weird and not weird.startswith(".")


def test_redact_drops_query_strings() -> None:
    assert redact("https://h/a.safetensors?token=secret") == "https://h/a.safetensors"


def test_url_is_downloaded_once_into_the_cache(tmp_path: Path) -> None:
    fetch = FakeFetch(safetensors_bytes())
    url = "https://example.com/loras/style.safetensors"
    first = resolve_lora_file(url, tmp_path, fetch=fetch, max_mb=10, timeout_s=5)
    second = resolve_lora_file(url, tmp_path, fetch=fetch, max_mb=10, timeout_s=5)
    assert first == second and first.parent == tmp_path and fetch.calls == [url]


def test_bad_download_is_rejected_and_not_kept(tmp_path: Path) -> None:
    fetch = FakeFetch(b"<html>not a lora</html>")
    with pytest.raises(InvalidTaskParams, match="not a safetensors file"):
        resolve_lora_file("https://e/x.safetensors", tmp_path, fetch=fetch, max_mb=10, timeout_s=5)
    assert list(tmp_path.iterdir()) == []


def test_missing_local_file_and_missing_downloader(tmp_path: Path) -> None:
    with pytest.raises(InvalidTaskParams, match="LoRA file not found"):
        resolve_lora_file(str(tmp_path / "nope.safetensors"), tmp_path, fetch=None, max_mb=1, timeout_s=1)
    with pytest.raises(InputUnavailable, match="no downloader"):
        resolve_lora_file("https://e/x.safetensors?sig=abc", tmp_path, fetch=None, max_mb=1, timeout_s=1)


class FakePipe:
    def __init__(self) -> None:
        self.calls: list[tuple] = []
        # Like diffusers: a loaded adapter appears in its component's peft_config.
        self.transformer = SimpleNamespace(peft_config={})
        self.transformer_2 = SimpleNamespace(peft_config={})

    def load_lora_weights(self, path: str, adapter_name: str, load_into_transformer_2: bool) -> None:
        component = "transformer_2" if load_into_transformer_2 else "transformer"
        getattr(self, component).peft_config[adapter_name] = path
        self.calls.append(("load", adapter_name, component))

    def delete_adapters(self, names: list[str]) -> None:
        self.calls.append(("delete", *names))

    def set_adapters(self, names: list[str], adapter_weights: list[dict]) -> None:
        self.calls.append(("set", tuple(names), tuple(tuple(sorted(w.items())) for w in adapter_weights)))

    def enable_lora(self) -> None:
        self.calls.append(("enable",))

    def disable_lora(self) -> None:
        self.calls.append(("disable",))


def wanted(name: str, *components: str) -> WantedAdapter:
    return WantedAdapter(name, Path(f"/{name}.safetensors"), frozenset(components or ("transformer",)))


def test_sync_loads_only_missing_adapters_into_their_experts() -> None:
    pipe, state = FakePipe(), AdapterState()
    edits: list[str] = []

    class Editing:
        def __enter__(self) -> None:
            edits.append("enter")

        def __exit__(self, *exc: object) -> None:
            edits.append("exit")

    sync_adapters(pipe, state, [wanted("a", "transformer", "transformer_2")], editing=Editing, max_loaded=4)
    sync_adapters(pipe, state, [wanted("a", "transformer", "transformer_2")], editing=Editing, max_loaded=4)
    assert pipe.calls == [("load", "a", "transformer"), ("load", "a", "transformer_2")]
    assert edits == ["enter", "exit"]  # the second task needed no edit


def test_sync_deletes_least_recently_used_beyond_the_cap() -> None:
    pipe, state = FakePipe(), AdapterState()
    for name in ("a", "b", "c"):
        sync_adapters(pipe, state, [wanted(name)], editing=_nothing, max_loaded=2)
    assert ("delete", "a") in pipe.calls and set(state.loaded) == {"b", "c"}


def test_weights_activate_only_nonzero_adapters() -> None:
    pipe, state = (
        FakePipe(),
        AdapterState(loaded={"a": frozenset({"transformer"}), "b": frozenset({"transformer"})}),
    )
    set_adapter_weights(pipe, state, {"a": 0.5, "b": 0.0})
    set_adapter_weights(pipe, state, {"a": 0.0, "b": 0.0})
    assert pipe.calls == [("enable",), ("set", ("a",), ((("transformer", 0.5),),)), ("disable",)]


class _Nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _nothing() -> _Nothing:
    return _Nothing()
