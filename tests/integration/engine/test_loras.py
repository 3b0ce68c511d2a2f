"""LoRAs on the tiny model: effect, removal, weights, URL download into the cache, expert mapping."""

from __future__ import annotations

import http.server
import logging
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from headless_wan.engine import LoraSpec
from headless_wan.engine.loras import adapter_name
from headless_wan.errors import InvalidTaskParams
from headless_wan.media.fetch import fetch as media_fetch
from tests.helpers import allow_loopback_inputs

from .conftest import tiny_request, write_lora

pytestmark = pytest.mark.slow


def test_lora_changes_the_output_and_removing_it_restores_it(make_engine, lora_file: Path) -> None:
    engine = make_engine()
    base = engine.generate(tiny_request()).frames
    styled = engine.generate(tiny_request(loras=(LoraSpec(str(lora_file)),))).frames
    half = engine.generate(tiny_request(loras=(LoraSpec(str(lora_file), "0.5"),))).frames
    restored = engine.generate(tiny_request()).frames
    assert not np.array_equal(base, styled) and not np.array_equal(styled, half)
    assert np.array_equal(base, restored)
    assert engine.load_count == 1


def test_zero_weight_lora_is_not_loaded(make_engine, lora_file: Path) -> None:
    engine = make_engine()
    base = engine.generate(tiny_request()).frames
    zero = engine.generate(tiny_request(loras=(LoraSpec(str(lora_file), "0"),))).frames
    assert np.array_equal(base, zero) and engine._cache.current.adapters.loaded == {}


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def lora_server(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    served = tmp_path / "served"
    served.mkdir()
    write_lora(served / "remote style.safetensors", seed=7)
    _CountingHandler.requests = []
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(_CountingHandler, directory=str(served))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    allow_loopback_inputs()
    try:
        yield f"http://127.0.0.1:{server.server_port}", _CountingHandler.requests
    finally:
        server.shutdown()
        thread.join()


def test_url_lora_is_downloaded_once_and_cached(make_engine, lora_server, tmp_path: Path) -> None:
    base_url, requests = lora_server
    url = f"{base_url}/remote%20style.safetensors?token=secret"
    engine = make_engine(lora_cache_dir=tmp_path / "cache")
    first = engine.generate(tiny_request(loras=(LoraSpec(url),)), fetch=media_fetch)
    local = write_lora(tmp_path / "same.safetensors", seed=7)
    second = engine.generate(tiny_request(loras=(LoraSpec(url),)), fetch=media_fetch)
    from_disk = make_engine().generate(tiny_request(loras=(LoraSpec(str(local)),))).frames
    assert len(requests) == 1  # the second task found it in the cache
    assert [p.name.split("_", 1)[1] for p in (tmp_path / "cache").iterdir()] == ["remote_style.safetensors"]
    assert np.array_equal(first.frames, second.frames) and np.array_equal(first.frames, from_disk)
    assert first.settings["loras"][0]["source"].endswith("/remote%20style.safetensors")  # no token
    assert first.settings["loras"][0]["adapter"] == adapter_name(url)


@pytest.mark.parametrize(("multiplier", "components"), [("1;0", {"transformer"}), ("0;1", {"transformer_2"})])
def test_two_expert_lora_goes_only_to_the_expert_that_uses_it(
    make_engine, lora_file: Path, multiplier: str, components: set[str]
) -> None:
    engine = make_engine()
    request = tiny_request(model="tiny-2experts", steps=4, loras=(LoraSpec(str(lora_file), multiplier),))
    result = engine.generate(request)
    assert set(engine._cache.current.adapters.loaded[adapter_name(str(lora_file))]) == components
    assert result.settings["steps_per_phase"][0] > 0 and result.settings["expert_switch_step"] is not None


def _save(path: Path, keys: list[str]) -> Path:
    import torch
    from safetensors.torch import save_file

    tensors = {}
    for key in keys:
        tensors[f"{key}.lora_A.weight"] = torch.ones(4, 24)
        tensors[f"{key}.lora_B.weight"] = torch.ones(24, 4)
    save_file(tensors, str(path))
    return path


def test_lora_that_injects_no_layer_fails_loudly(make_engine, tmp_path: Path) -> None:
    # Keys of another component: diffusers only warns and would run the task without the LoRA.
    wrong = _save(tmp_path / "wrong_prefix.safetensors", ["text_encoder.encoder.block.0.layer.0.q"])
    engine = make_engine()
    with pytest.raises(
        InvalidTaskParams, match=r"wrong_prefix\.safetensors injects no layers into transformer"
    ):
        engine.generate(tiny_request(loras=(LoraSpec(str(wrong)),)))
    # The worker carries on: the same engine still generates.
    assert engine.generate(tiny_request()).frames.size > 0


def test_lora_keys_that_match_nothing_are_logged(make_engine, tmp_path: Path, caplog) -> None:
    partial = _save(
        tmp_path / "partial.safetensors",
        ["transformer.blocks.0.attn1.to_q", "transformer.blocks.99.attn1.to_q"],
    )
    engine = make_engine()
    with caplog.at_level(logging.WARNING, logger="headless_wan.engine.loras"):
        engine.generate(tiny_request(loras=(LoraSpec(str(partial)),)))
    dropped = [r for r in caplog.records if getattr(r, "action", None) == "lora_keys_dropped"]
    assert dropped and "blocks.99.attn1.to_q" in dropped[0].getMessage()
    assert adapter_name(str(partial)) in engine._cache.current.adapters.loaded
