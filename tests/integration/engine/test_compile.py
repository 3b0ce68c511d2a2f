"""HW_COMPILE on the tiny model: regional torch.compile (inductor on the CPU) of both experts gives
the output of the eager pipeline, and the compiled pipeline is cached like any other."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .conftest import tiny_request

# Inductor compiles C++ kernels for the tiny blocks: minutes on a shared 2-core CPU.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_compiled_experts_match_eager(make_engine, tmp_path: Path) -> None:
    request = tiny_request(model="tiny-2experts", steps=2)
    eager = make_engine().generate(request).frames
    cache = tmp_path / "inductor"
    engine = make_engine(compile=True, compile_cache_dir=cache)
    compiled = engine.generate(request).frames
    again = engine.generate(request).frames
    pipe = engine._cache.current.pipe
    for expert in (pipe.transformer, pipe.transformer_2):
        assert any(type(block).__name__ == "OptimizedModule" or hasattr(block, "_compiled_call_impl")
                   for block in expert.blocks)  # fmt: skip
    assert engine.load_count == 1 and np.array_equal(compiled, again)
    assert np.abs(compiled.astype(int) - eager.astype(int)).max() <= 2
    assert any(cache.iterdir())  # kernels went to the configured cache
