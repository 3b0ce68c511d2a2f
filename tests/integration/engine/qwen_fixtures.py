"""Offline inputs for the image tests: LoRA files shaped for the tiny Qwen / Z-Image transformers, and a
LoRA cache holding it under the names the cache gives to the predecessor's task LoRA URLs (so the
real lookup path runs with no download)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from headless_wan.engine.loras import cache_filename

TINY_WIDTH = 32  # heads x head dim of the tiny Qwen and Z-Image transformers
QWEN_MODULES = tuple(f"transformer_blocks.{b}.attn.{p}" for b in (0, 1) for p in ("to_q", "to_v"))
ZIMAGE_MODULES = tuple(f"layers.{b}.attention.{p}" for b in (0, 1) for p in ("to_q", "to_v"))


def write_qwen_lora(
    path: Path, *, seed: int = 0, rank: int = 4, modules: tuple[str, ...] = QWEN_MODULES
) -> Path:
    """A peft-format LoRA (`transformer.<module>.lora_A/B.weight`) for the tiny image transformers."""
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for module in modules:
        key = f"transformer.{module}"
        tensors[f"{key}.lora_A.weight"] = torch.randn(rank, TINY_WIDTH, generator=generator)
        tensors[f"{key}.lora_B.weight"] = torch.randn(TINY_WIDTH, rank, generator=generator)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path


def seed_lora_cache(cache_dir: Path, urls: Iterable[str]) -> None:
    """Place a tiny LoRA where the cache looks for each URL (a different one per URL)."""
    for index, url in enumerate(urls):
        write_qwen_lora(cache_dir / cache_filename(url), seed=100 + index)
