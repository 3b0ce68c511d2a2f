"""Scaled fp8 for the transformers through torchao (the `fp8_scaled` memory profile).

Unlike the `fp8` profile (diffusers' layerwise cast: weights stored in e4m3 without scales and
lifted back to bf16 for every matmul, which saves memory only), torchao keeps a scale per weight
row, so precision holds, and on GPUs with fp8 tensor cores (compute capability 8.9+: Ada, Hopper)
the matmuls themselves run in fp8 with dynamic per-row activation scales. Elsewhere (a CPU, an
Ampere GPU) torchao has no fp8 matmul: the weights are still stored scaled in fp8 (the memory
saving) and computed in the compute dtype.

torchao is an optional extra (`pip install headless-wan[fp8]`); without it the profile is a
configuration error naming the extra.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from headless_wan.errors import ConfigError

log = logging.getLogger(__name__)
FP8_MATMUL_CAPABILITY = (8, 9)


def has_fp8_matmul(device: Any) -> bool:
    import torch

    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= FP8_MATMUL_CAPABILITY


def quantize_experts(experts: Sequence[Any], device: Any) -> str:
    """Quantize every Linear of the experts in place (LoRA branches excluded); returns the mode."""
    try:
        from torchao.quantization import (
            Float8DynamicActivationFloat8WeightConfig,
            Float8WeightOnlyConfig,
            PerRow,
            quantize_,
        )
    except ImportError as exc:
        raise ConfigError(
            "memory profile 'fp8_scaled' needs torchao (install the 'fp8' extra); "
            f"or use the 'fp8' profile: {exc}"
        ) from exc
    dynamic = has_fp8_matmul(device)
    config = (
        Float8DynamicActivationFloat8WeightConfig(granularity=PerRow())
        if dynamic
        else Float8WeightOnlyConfig()
    )
    for expert in experts:
        quantize_(expert, config, filter_fn=_quantizable)
    mode = "fp8 matmuls, per-row dynamic scales" if dynamic else "fp8 weights, per-row scales, bf16 matmuls"
    log.info("quantized %d expert(s): %s", len(experts), mode, extra={"action": "fp8_scaled"})
    return mode


def _quantizable(module: Any, name: str) -> bool:
    """Linear layers of the base model; a LoRA's own small matrices stay in the compute dtype."""
    import torch

    return isinstance(module, torch.nn.Linear) and "lora_" not in name
