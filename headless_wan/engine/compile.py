"""Regional `torch.compile`: each expert's repeated transformer blocks, compiled once.

`compile_repeated_blocks` compiles one block class (WanTransformerBlock, and WanVACETransformerBlock
in VACE) and reuses the graph for all 40 blocks, so compiling costs seconds instead of the minutes
a whole-model compile takes, and both experts share the same kernels.

Opt-in (`HW_COMPILE`). The engine warms a compiled pipeline at load, at the first task's shape
(engine/video_call.py), so tasks do not compile; a new shape compiles once. A kernel cache on the
model volume (`HW_COMPILE_CACHE_DIR`) lets later processes reuse the kernels. LoRAs on the compiled
path are fused or tensor-scaled so that phase switches never recompile (engine/lora_fusion.py).

Each guard state (shape, the LoRA layers' loaded and active adapters) is one cache entry of the
block's code, shared by all blocks of both experts. dynamo's default limit of 8 entries would,
on a worker that sees many LoRA sets, silently fall back to eager blocks; the limit is raised.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
RECOMPILE_LIMIT = 64


def set_cache_dir(cache_dir: Path | None) -> None:
    """Point inductor's kernel cache at `cache_dir` (it reads the variable when it first compiles)."""
    if cache_dir is None:
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir)


def compile_experts(pipe: Any, *, cache_dir: Path | None = None, fullgraph: bool = False) -> int:
    """Compile the repeated blocks of every expert in place; returns how many experts."""
    import torch._dynamo

    set_cache_dir(cache_dir)
    config = torch._dynamo.config
    config.recompile_limit = max(config.recompile_limit, RECOMPILE_LIMIT)
    experts = [m for m in (pipe.transformer, getattr(pipe, "transformer_2", None)) if m is not None]
    for expert in experts:
        expert.compile_repeated_blocks(fullgraph=fullgraph)
    log.info(
        "compiled the repeated blocks of %d expert(s)",
        len(experts),
        extra={"action": "compile", "cache_dir": str(cache_dir) if cache_dir else None},
    )
    return len(experts)
