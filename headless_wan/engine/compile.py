"""Regional `torch.compile`: each expert's repeated transformer blocks, compiled once.

`compile_repeated_blocks` compiles one block class (WanTransformerBlock, and WanVACETransformerBlock
in VACE) and reuses the graph for all 40 blocks, so compiling costs seconds instead of the minutes
a whole-model compile takes, and both experts share the same kernels.

Opt-in (`HW_COMPILE`): the first forward at each new shape compiles (a 480p x 81 task pays it once
per process; a kernel cache on the model volume, `HW_COMPILE_CACHE_DIR`, makes later processes
reuse the kernels). Not done yet: fusing LoRAs whose weight is constant within an expert (an
adapter change between tasks can trigger a recompile of the blocks it touches).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def set_cache_dir(cache_dir: Path | None) -> None:
    """Point inductor's kernel cache at `cache_dir` (it reads the variable when it first compiles)."""
    if cache_dir is None:
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir)


def compile_experts(pipe: Any, *, cache_dir: Path | None = None, fullgraph: bool = False) -> int:
    """Compile the repeated blocks of every expert in place; returns how many experts."""
    set_cache_dir(cache_dir)
    experts = [m for m in (pipe.transformer, getattr(pipe, "transformer_2", None)) if m is not None]
    for expert in experts:
        expert.compile_repeated_blocks(fullgraph=fullgraph)
    log.info(
        "compiled the repeated blocks of %d expert(s)",
        len(experts),
        extra={"action": "compile", "cache_dir": str(cache_dir) if cache_dir else None},
    )
    return len(experts)
