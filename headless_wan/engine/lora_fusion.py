"""LoRAs on the compiled path (HW_COMPILE): fused once where constant, tensor-scaled residuals.

A compiled block's graph is guarded on the Python state its LoRA layers read: which adapters are
active, whether adapters are enabled, and each adapter's scaling when it is a float. diffusers'
`set_adapters` changes all three, so switching weights at a phase boundary would recompile the
blocks. On a compiled pipeline the engine therefore never calls it. Instead:

- **Fused once.** At the first task on the pipeline, every LoRA whose weight is constant over an
  expert's steps is added into that expert's weights (W += w * B @ A, computed in float32). The
  fused set never changes afterwards: un-fusing by subtraction does not restore the weights
  exactly (rounding leaves one ulp on a few percent of the elements per cycle), and a worker that
  changed its LoRA set every task would drift. Fused adapters are pinned (never deleted).
- **Residuals, tensor-scaled.** Per task, each expert runs every adapter whose wanted weight
  differs from what is fused in it (a per-step value, a different constant, or minus the fused
  weight for a task that does not want a fused LoRA) as an unfused adapter whose scaling is a
  0-dim tensor. The step callback only fills those tensors in place, which changes no guard, so
  phase switches and per-step multipliers never recompile. The same tensor trick is what peft's
  compiled hotswap preparation does (`peft.utils.hotswap`).

A different set of active residual adapters (a task with another LoRA set) is a different guard
state: compiled once, when first seen, then reused. diffusers' `load_lora_weights(hotswap=True)`
swaps weights under an existing adapter name and would avoid that one compile, but it needs ranks
padded up front (`enable_lora_hotswap(target_rank=...)`) and forbids the adapters that the fused
set pins, so it is not used.

Fusing needs the weights stored in the compute dtype on the device (the `resident` profile);
with fp8 storage or offloading every LoRA runs as a residual adapter (still without recompiles).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headless_wan.engine.loras import EXPERT_COMPONENTS, WantedAdapter
from headless_wan.engine.phases import DenoisePlan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExpertPlan:
    """What one expert runs: residual adapters and their weight per step (of all steps)."""

    residuals: Mapping[str, tuple[float, ...]]


def constant_weights(plan: DenoisePlan, expert: int) -> dict[str, float]:
    """Adapters whose weight is the same nonzero value on every step of `expert`."""
    steps = [s for s in plan.steps if s.expert == expert]
    found = {}
    for index, name in enumerate(plan.lora_names):
        values = {s.lora_weights[index] for s in steps}
        if len(values) == 1 and (value := values.pop()) != 0:
            found[name] = value
    return found


def residual_plan(plan: DenoisePlan, expert: int, fused: Mapping[str, float]) -> ExpertPlan:
    """Per adapter, the weight to run unfused on each step: wanted minus fused (0 off this expert)."""
    wanted = {name: [0.0] * len(plan.steps) for name in (*plan.lora_names, *fused)}
    for step_index, step in enumerate(plan.steps):
        if step.expert != expert:
            continue
        for name in wanted:
            wanted[name][step_index] = -fused.get(name, 0.0)
        for name, weight in zip(plan.lora_names, step.lora_weights, strict=True):
            wanted[name][step_index] += weight
    return ExpertPlan({name: tuple(w) for name, w in wanted.items() if any(v != 0 for v in w)})


@dataclass
class FusionState:
    """What is fused into each expert of one cached pipeline (set once, at its first task)."""

    decided: bool = False
    fused: dict[str, dict[str, float]] = field(default_factory=dict)
    """component → adapter → weight added into that expert's weights."""
    paths: dict[str, Path] = field(default_factory=dict)

    def pinned(self) -> list[WantedAdapter]:
        """Fused adapters stay loaded: their matrices are needed to run residuals against them."""
        components: dict[str, set[str]] = {}
        for component, names in self.fused.items():
            for name in names:
                components.setdefault(name, set()).add(component)
        return [WantedAdapter(n, self.paths[n], frozenset(c)) for n, c in sorted(components.items())]


def experts_of(pipe: Any) -> list[tuple[str, Any]]:
    return [(c, m) for c in EXPERT_COMPONENTS if (m := getattr(pipe, c, None)) is not None]


def prepare_compiled(
    pipe: Any,
    state: FusionState,
    plan: DenoisePlan,
    wanted: Sequence[WantedAdapter],
    *,
    can_fuse: bool,
    sync: Callable[[Sequence[WantedAdapter]], None],
) -> StepWeights:
    """Load this task's adapters (with the pinned ones), fuse at the first task, activate the
    residuals; returns the per-step weight setter for the step callback."""
    sync([*wanted, *(p for p in state.pinned() if p.name not in {w.name for w in wanted})])
    if not state.decided:
        state.decided = True
        paths = {w.name: w.path for w in wanted}
        for index, (component, expert) in enumerate(experts_of(pipe)):
            chosen = {
                n: w for n, w in constant_weights(plan, index).items() if can_fuse and _vanilla(expert, n)
            }
            for name, weight in chosen.items():
                _fuse(expert, name, weight)
                state.paths[name] = paths[name]
            state.fused[component] = chosen
        if any(state.fused.values()):
            log.info("fused LoRAs into the compiled experts: %s", state.fused, extra={"action": "lora_fuse"})
    plans = [residual_plan(plan, i, state.fused.get(c, {})) for i, (c, _) in enumerate(experts_of(pipe))]
    return StepWeights([_activate(expert, p) for (_, expert), p in zip(experts_of(pipe), plans, strict=True)])


def _lora_layers(expert: Any) -> list[Any]:
    from peft.tuners.lora import LoraLayer

    return [m for m in expert.modules() if isinstance(m, LoraLayer)]


def _vanilla(expert: Any, name: str) -> bool:
    """Plain low-rank adapters only: a variant (DoRA) is not W + B @ A and stays unfused."""
    return not any(name in layer.lora_variant for layer in _lora_layers(expert) if name in layer.lora_A)


def _base_scale(layer: Any, name: str) -> float:
    rank = layer.r[name]
    return layer.lora_alpha[name] / (math.sqrt(rank) if layer.use_rslora.get(name, False) else rank)


def _fuse(expert: Any, name: str, weight: float) -> None:
    """W += weight * scale * B @ A (and the bias of B), in float32, rounded once to W's dtype."""
    import torch

    with torch.no_grad():
        for layer in _lora_layers(expert):
            if name not in layer.lora_A:
                continue
            factor = weight * _base_scale(layer, name)
            a, b = layer.lora_A[name].weight, layer.lora_B[name].weight
            delta = (b.float() @ a.float()) * factor
            if getattr(layer, "fan_in_fan_out", False):
                delta = delta.T
            base = layer.get_base_layer()
            base.weight.copy_((base.weight.float() + delta.to(base.weight.device)).to(base.weight.dtype))
            if layer.lora_bias.get(name) and layer.lora_B[name].bias is not None:
                bias = layer.lora_B[name].bias.float() * factor
                base.bias.copy_((base.bias.float() + bias.to(base.bias.device)).to(base.bias.dtype))


@dataclass(frozen=True)
class _Residual:
    weights: tuple[float, ...]
    scalings: tuple[tuple[Any, float], ...]
    """(0-dim scaling tensor of one layer, that layer's base scale)."""


def _activate(expert: Any, plan: ExpertPlan) -> list[_Residual]:
    """Make exactly the residual adapters active in every LoRA layer, with tensor scalings."""
    import torch

    residuals: dict[str, list[tuple[Any, float]]] = {name: [] for name in plan.residuals}
    for layer in _lora_layers(expert):
        names = [n for n in plan.residuals if n in layer.lora_A]
        if not names:
            layer.enable_adapters(False)
            continue
        layer.enable_adapters(True)
        layer.set_adapter(names, inference_mode=True)
        for name in names:
            scaling = layer.scaling[name]
            if not isinstance(scaling, torch.Tensor):
                scaling = torch.tensor(0.0, device=layer.lora_A[name].weight.device)
                layer.scaling[name] = scaling
            residuals[name].append((scaling, _base_scale(layer, name)))
    return [_Residual(plan.residuals[n], tuple(s)) for n, s in residuals.items()]


class StepWeights:
    """Sets the residual adapters' scalings for a step, in place (no guard changes, no recompile)."""

    def __init__(self, per_expert: Sequence[Sequence[_Residual]]) -> None:
        self._residuals = [r for rs in per_expert for r in rs]
        self._current: dict[int, float] = {}

    def __call__(self, pipe: Any, step: int) -> None:
        for index, residual in enumerate(self._residuals):
            weight = residual.weights[step]
            if self._current.get(index) != weight:
                for tensor, base in residual.scalings:
                    tensor.fill_(weight * base)
                self._current[index] = weight


def can_fuse(profile: Any) -> bool:
    """Only weights stored in the compute dtype on the device can take a LoRA in place."""
    return profile.placement == "resident" and not profile.fp8_transformer and not profile.fp8_scaled
