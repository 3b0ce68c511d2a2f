"""benchmarks/gpu_segment.py --tiny: the benchmark's whole path (engine run with compile and its
warm-up, plain diffusers call, timings, table) on the CPU, so it cannot rot between GPU sessions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # subprocesses that load models
ROOT = Path(__file__).resolve().parents[3]


def test_tiny_run_prints_timings_and_the_ratio() -> None:
    script = str(ROOT / "benchmarks" / "gpu_segment.py")
    done = subprocess.run(
        [sys.executable, script, "--tiny", "--compile", "--attention", "auto,native"],
        capture_output=True, text=True, timeout=600, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [row["attention"] for row in rows] == ["auto", "native"]
    for row in rows:
        assert row["shape"] == "32x32x5" and row["attention_used"] == "native"
        # The 2-2-2 plan switches experts after step 4: both experts' steps were timed.
        assert row["step_s_expert_1"] > 0 and row["step_s_expert_2"] > 0
        assert row["total_s"] > row["decode_s"] > 0 and row["plain_diffusers_s"] > 0
        assert row["ratio_vs_plain"] == pytest.approx(row["plain_diffusers_s"] / row["total_s"])
        # Compile time is reported apart, paid at load: the tasks after it compiled nothing.
        assert row["compile"] and row["compile_warmup_s"] > 0 and row["load_s"] > 0
        assert row["first_task_s"] > 0 and row["graphs_compiled_by_tasks"] == 0
    assert "ratio_vs_plain" in done.stdout.splitlines()[-3]


def test_sizes_count_the_full_architecture_without_memory() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_segment.py"), "--sizes"],
        capture_output=True, text=True, timeout=600, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    sizes = json.loads(done.stdout)
    # Wan2.2 I2V A14B: two experts of ~14 B parameters; UMT5-XXL encoder ~5.7 B.
    assert 13 < sizes["transformer_params_b"] < 16 and 13 < sizes["transformer_2_params_b"] < 16
    assert 5 < sizes["text_encoder_params_b"] < 7
