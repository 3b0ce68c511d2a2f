"""Attention backend: chosen once per process and device, verified against `native`.

diffusers routes every attention call of the Wan transformers through its dispatcher; the backend
is set on each expert at load (`set_attention_backend`), and the choice leaks process-wide
(engine.md §10), so it is made once per (setting, device, dtype) and never changes between tasks.

`HW_ATTENTION=auto` tries, in order, the optional kernels that are installed (SageAttention,
FlashAttention 3, FlashAttention 2: the `sage` / `flash3` / `flash` extras), then torch's own fused
kernels (`_native_cudnn`, `_native_flash`, `_native_efficient`), then `native`; on a CPU only
`native`. Each candidate runs one tiny attention forward beside `native`; the largest absolute
difference is logged, and a candidate that raises or disagrees beyond the dtype's tolerance is
skipped (a broken wheel or an unsupported GPU must cost speed, never correctness). A named backend
(`HW_ATTENTION=sage`) is verified the same way and falls back to `native` when it fails.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from headless_wan.errors import ConfigError

log = logging.getLogger(__name__)

NATIVE = "native"
AUTO = "auto"
TORCH_FUSED = ("_native_cudnn", "_native_flash", "_native_efficient")
# (diffusers backend, the module its kernel comes from), fastest first.
OPTIONAL = (("sage", "sageattention"), ("_flash_3", "flash_attn_interface"), ("flash", "flash_attn"))
# Max abs difference from `native` on unit-variance inputs: fp8/int8 kernels (Sage) round q·k.
TOLERANCE = {"float32": 1e-3, "bfloat16": 5e-2, "float16": 2e-2}
PROBE_SHAPE = (1, 256, 4, 64)  # batch, tokens, heads, head dim (the dispatcher's layout)

Probe = Callable[[str], Any]
"""backend name → the attention output of the fixed probe inputs (a tensor)."""


@dataclass(frozen=True)
class AttentionChoice:
    requested: str
    backend: str
    max_abs_diff: float
    rejected: tuple[tuple[str, str], ...] = ()
    """(backend, why) for every candidate tried before the chosen one."""


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def candidates(
    requested: str, device_type: str, *, is_installed: Callable[[str], bool] = installed
) -> list[str]:
    """Backends to try, in order; `native` always last."""
    if requested == NATIVE:
        return [NATIVE]
    if requested != AUTO:
        return [requested, NATIVE]
    if device_type != "cuda":
        return [NATIVE]
    optional = [name for name, module in OPTIONAL if is_installed(module)]
    return [*optional, *TORCH_FUSED, NATIVE]


def select(requested: str, names: Sequence[str], probe: Probe, *, tolerance: float) -> AttentionChoice:
    """The first of `names` whose probe output matches `native`'s within `tolerance`."""
    if list(names) == [NATIVE]:
        return AttentionChoice(requested, NATIVE, 0.0)
    reference = probe(NATIVE)
    rejected: list[tuple[str, str]] = []
    for name in names:
        if name == NATIVE:
            break
        try:
            diff = float((probe(name).float() - reference.float()).abs().max())
        except Exception as exc:  # any failure of an optional kernel means "skip it"
            rejected.append((name, f"{type(exc).__name__}: {str(exc)[:200]}"))
            continue
        if diff == diff and diff <= tolerance:  # diff == diff is False for NaN
            return AttentionChoice(requested, name, diff, tuple(rejected))
        rejected.append((name, f"max abs diff {diff:.3g} > {tolerance:g}"))
    return AttentionChoice(requested, NATIVE, 0.0, tuple(rejected))


def dispatch_probe(device: str, dtype_name: str) -> Probe:
    """A probe through diffusers' dispatcher on fixed random inputs on `device`."""
    import torch
    from diffusers.models import attention_dispatch as dispatch

    generator = torch.Generator(device="cpu").manual_seed(0)
    dtype = getattr(torch, dtype_name)
    q, k, v = (torch.randn(PROBE_SHAPE, generator=generator).to(device, dtype) for _ in range(3))

    def run(name: str) -> Any:
        backend = dispatch.AttentionBackendName(name)
        # Same check `set_attention_backend` makes: a missing or too old package raises here.
        dispatch._check_attention_backend_requirements(backend)
        with torch.no_grad():
            return dispatch.dispatch_attention_fn(q, k, v, backend=backend)

    return run


def _check_known(requested: str) -> None:
    from diffusers.models.attention_dispatch import AttentionBackendName

    known = {b.value for b in AttentionBackendName}
    if requested != AUTO and requested not in known:
        raise ConfigError(
            f"HW_ATTENTION: unknown attention backend {requested!r} (auto or one of: {', '.join(sorted(known))})"
        )


_CHOSEN: dict[tuple[str, str, str], AttentionChoice] = {}


def resolve(requested: str, *, device: str, dtype_name: str, probe: Probe | None = None) -> AttentionChoice:
    """The backend for this process (memoised); logs the choice, its difference and the rejects."""
    key = (requested, device, dtype_name)
    if key in _CHOSEN:
        return _CHOSEN[key]
    _check_known(requested)
    device_type = device.split(":", 1)[0]
    names = candidates(requested, device_type)
    choice = select(
        requested,
        names,
        probe or dispatch_probe(device, dtype_name),
        tolerance=TOLERANCE.get(dtype_name, TOLERANCE["bfloat16"]),
    )
    _CHOSEN[key] = choice
    for name, why in choice.rejected:
        level = logging.WARNING if name == requested else logging.INFO
        log.log(level, "attention backend %s skipped: %s", name, why, extra={"action": "attention_backend"})
    log.info(
        "attention backend %s (asked %s; max abs diff vs native %.3g)",
        choice.backend,
        requested,
        choice.max_abs_diff,
        extra={"action": "attention_backend"},
    )
    return choice
