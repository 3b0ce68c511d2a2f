"""Attention backend selection: candidate order, verification against native, fallback."""

from __future__ import annotations

import logging

import pytest

torch = pytest.importorskip("torch")

from headless_wan.engine import attention  # noqa: E402
from headless_wan.errors import ConfigError  # noqa: E402

REFERENCE = torch.linspace(-1, 1, 64)


def fake_probe(outputs: dict[str, object]):
    """A probe whose backends return `outputs[name]` (a tensor, or an exception to raise)."""
    calls: list[str] = []

    def run(name: str):
        calls.append(name)
        out = outputs.get(name, REFERENCE)
        if isinstance(out, Exception):
            raise out
        return out

    return run, calls


def test_auto_on_cuda_tries_installed_kernels_then_torch_fused_then_native() -> None:
    names = attention.candidates("auto", "cuda", is_installed=lambda module: module == "sageattention")
    assert names == ["sage", "_native_cudnn", "_native_flash", "_native_efficient", "native"]
    assert attention.candidates("auto", "cuda", is_installed=lambda module: False)[0] == "_native_cudnn"


def test_auto_on_cpu_is_native_and_named_backends_fall_back_to_native() -> None:
    assert attention.candidates("auto", "cpu") == ["native"]
    assert attention.candidates("sage", "cuda") == ["sage", "native"]
    assert attention.candidates("native", "cuda") == ["native"]


def test_first_agreeing_backend_is_chosen_with_its_difference() -> None:
    probe, calls = fake_probe({"sage": REFERENCE + 0.01})
    choice = attention.select("auto", ["sage", "_native_cudnn", "native"], probe, tolerance=0.05)
    assert choice.backend == "sage" and choice.max_abs_diff == pytest.approx(0.01, abs=1e-6)
    assert calls == ["native", "sage"]


def test_disagreeing_backend_is_skipped() -> None:
    probe, _ = fake_probe({"sage": REFERENCE + 1.0})
    choice = attention.select("auto", ["sage", "_native_cudnn", "native"], probe, tolerance=0.05)
    assert choice.backend == "_native_cudnn"
    assert choice.rejected[0][0] == "sage" and "max abs diff 1 > 0.05" in choice.rejected[0][1]


def test_raising_or_nan_backends_fall_back_to_native() -> None:
    probe, _ = fake_probe(
        {"sage": RuntimeError("no kernel image for sm_90"), "_native_cudnn": REFERENCE * float("nan")}
    )
    choice = attention.select("sage", ["sage", "_native_cudnn", "native"], probe, tolerance=0.05)
    assert choice.backend == "native"
    assert [name for name, _ in choice.rejected] == ["sage", "_native_cudnn"]
    assert "RuntimeError: no kernel image" in choice.rejected[0][1]


def test_resolve_on_cpu_verifies_a_named_backend_through_diffusers(caplog) -> None:
    """A real probe: torch's math kernel agrees with native on the CPU and is kept."""
    pytest.importorskip("diffusers")
    with caplog.at_level(logging.INFO, logger="headless_wan.engine.attention"):
        choice = attention.resolve("_native_math", device="cpu", dtype_name="float32")
    assert choice.backend == "_native_math" and choice.max_abs_diff < 1e-4
    assert any("max abs diff vs native" in r.getMessage() for r in caplog.records)


def test_resolve_memoises_and_logs_the_fallback(caplog) -> None:
    pytest.importorskip("diffusers")
    probe, calls = fake_probe({"_native_efficient": REFERENCE + 2.0})
    with caplog.at_level(logging.INFO, logger="headless_wan.engine.attention"):
        first = attention.resolve("_native_efficient", device="cuda:7", dtype_name="bfloat16", probe=probe)
        again = attention.resolve("_native_efficient", device="cuda:7", dtype_name="bfloat16", probe=probe)
    assert first is again and first.backend == "native" and len(calls) == 2
    assert any(r.levelno == logging.WARNING and "skipped" in r.getMessage() for r in caplog.records)


def test_unknown_backend_is_a_config_error_naming_the_setting() -> None:
    pytest.importorskip("diffusers")
    with pytest.raises(ConfigError, match="HW_ATTENTION: unknown attention backend 'sagee'"):
        attention.resolve("sagee", device="cpu", dtype_name="float32")
