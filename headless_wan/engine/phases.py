"""Phase schedules: which expert, which CFG and which LoRA weights each denoising step uses.

Everything is decided by step index, never by comparing timesteps with WGP's threshold numbers:
the two engines' schedules differ slightly, so thresholds do not split steps the same way
(engine.md §7.2). A plan is computed before the run; the step callback applies it.

Phase rules (Reigh `phase_config`):
- steps = sum(steps_per_phase); 2 or 3 phases; guidance defaults 3.0, 1.0, 1.0.
- Two experts: with 2 phases the low-noise expert takes over after phase 1; with 3 phases after
  phase `model_switch_phase` (default 2).
- LoRA multipliers: "1.2" constant, "1.2;0" one value per phase, "0.1,0.3,0.5" one value per step
  of a phase (the comma list must have exactly one value per step).

CFG is switched per step through the pipeline's `_guidance_scale` (whether the unconditional pass
runs); the CFG *value* of a step is the call's `guidance_scale` (high-noise expert) or
`guidance_scale_2` (low-noise expert). So each expert can use one CFG value > 1, and CFG can only be
on in a high-noise phase if it is on from step one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from headless_wan.errors import InvalidTaskParams

PHASE_GUIDANCE_DEFAULTS = (3.0, 1.0, 1.0)
SUPPORTED_SOLVERS = ("unipc", "euler")


@dataclass(frozen=True)
class PhaseLora:
    source: str
    multiplier: str


@dataclass(frozen=True)
class PhaseConfig:
    """A parsed Reigh `phase_config`."""

    steps_per_phase: tuple[int, ...]
    guidance_per_phase: tuple[float, ...]
    model_switch_phase: int
    flow_shift: float | None = None
    solver: str | None = None
    loras: tuple[PhaseLora, ...] = ()

    @property
    def steps(self) -> int:
        return sum(self.steps_per_phase)


def parse_multiplier(text: str, steps_per_phase: Sequence[int], *, field: str = "multiplier") -> list[float]:
    """Expand a WGP multiplier string into one weight per denoising step."""
    phases = str(text).strip().split(";")
    if len(phases) > 1 and len(phases) != len(steps_per_phase):
        raise InvalidTaskParams(
            f"{field}: {text!r} has {len(phases)} phases but the schedule has {len(steps_per_phase)}"
        )
    if len(phases) == 1:
        phases = phases * len(steps_per_phase)
    weights: list[float] = []
    for phase_text, phase_steps in zip(phases, steps_per_phase, strict=True):
        values = [_number(v, field, text) for v in phase_text.split(",")]
        if len(values) == 1:
            values = values * phase_steps
        elif len(values) != phase_steps:
            raise InvalidTaskParams(
                f"{field}: {phase_text!r} lists {len(values)} per-step values for a phase of {phase_steps} steps"
            )
        weights += values
    return weights


def _number(value: str, field: str, text: str) -> float:
    try:
        number = float(value.strip())
    except ValueError:
        raise InvalidTaskParams(f"{field}: {text!r} is not a valid multiplier") from None
    if not math.isfinite(number):
        raise InvalidTaskParams(f"{field}: {text!r} is not a finite number")
    return number


def parse_phase_config(raw: Mapping[str, Any]) -> PhaseConfig:
    """Parse and check a Reigh `phase_config`; any problem is the task's fault."""
    if not isinstance(raw, Mapping):
        raise InvalidTaskParams("phase_config: must be an object")
    steps = raw.get("steps_per_phase")
    if not isinstance(steps, Sequence) or isinstance(steps, str) or not steps:
        raise InvalidTaskParams("phase_config.steps_per_phase: must be a list of step counts")
    if any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in steps):
        raise InvalidTaskParams(f"phase_config.steps_per_phase: counts must be integers >= 1 (got {steps})")
    # num_phases in the payload is advisory: the arrays decide (the predecessor corrected it too).
    count = len(steps)
    if count not in (2, 3):
        raise InvalidTaskParams(f"phase_config.steps_per_phase: 2 or 3 phases are supported (got {count})")
    phase_entries = list(raw.get("phases") or [])
    if len(phase_entries) > count:
        raise InvalidTaskParams(f"phase_config.phases: {len(phase_entries)} entries for {count} phases")
    guidance = []
    for index in range(count):
        entry = phase_entries[index] if index < len(phase_entries) else {}
        value = entry.get("guidance_scale", PHASE_GUIDANCE_DEFAULTS[index])
        guidance.append(_guidance(value, f"phase_config.phases[{index}].guidance_scale"))
    solver = raw.get("sample_solver")
    if solver is not None and solver not in SUPPORTED_SOLVERS:
        raise InvalidTaskParams(
            f"phase_config.sample_solver: {solver!r} is not supported ({SUPPORTED_SOLVERS})"
        )
    shift = raw.get("flow_shift")
    if shift is not None and (not isinstance(shift, (int, float)) or not 0 < shift <= 100):
        raise InvalidTaskParams(f"phase_config.flow_shift: must be a number in (0, 100] (got {shift!r})")
    return PhaseConfig(
        steps_per_phase=tuple(steps),
        guidance_per_phase=tuple(guidance),
        model_switch_phase=_switch_phase(raw.get("model_switch_phase"), count),
        flow_shift=None if shift is None else float(shift),
        solver=solver,
        loras=_fold_phase_loras(phase_entries, count),
    )


def _guidance(value: Any, field: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 30:
        raise InvalidTaskParams(f"{field}: must be a number in [0, 30] (got {value!r})")
    return float(value)


def _switch_phase(value: Any, count: int) -> int:
    """Last phase of the high-noise expert: after phase 1 with 2 phases; with 3 phases the task's
    `model_switch_phase` (1 or 2, default 2)."""
    if count == 2:
        return 1
    if value is None:
        return 2
    if value not in (1, 2):
        raise InvalidTaskParams(f"phase_config.model_switch_phase: must be 1 or 2 (got {value!r})")
    return int(value)


def _fold_phase_loras(entries: Sequence[Mapping[str, Any]], count: int) -> tuple[PhaseLora, ...]:
    """One LoRA per unique URL with a "m1;m2[;m3]" multiplier, "0" in the phases that lack it."""
    per_source: dict[str, list[str]] = {}
    for index, entry in enumerate(entries):
        for item_index, item in enumerate(entry.get("loras") or []):
            field = f"phase_config.phases[{index}].loras[{item_index}]"
            source = item.get("url") or item.get("path") if isinstance(item, Mapping) else None
            if not isinstance(source, str) or not source.strip():
                raise InvalidTaskParams(f"{field}.url: missing")
            multiplier = str(item.get("multiplier", "1.0")).strip()
            if ";" in multiplier:
                raise InvalidTaskParams(f"{field}.multiplier: a phase's multiplier cannot contain ';'")
            per_source.setdefault(source.strip(), ["0"] * count)[index] = multiplier
    return tuple(PhaseLora(source, ";".join(values)) for source, values in per_source.items())


@dataclass(frozen=True)
class Schedule:
    """Phases with their step counts, CFG and expert (0 = high noise, 1 = low noise)."""

    steps_per_phase: tuple[int, ...]
    guidance_per_phase: tuple[float, ...]
    expert_per_phase: tuple[int, ...]

    @property
    def steps(self) -> int:
        return sum(self.steps_per_phase)

    def per_step(self, values: Sequence[Any]) -> list[Any]:
        return [
            value for value, count in zip(values, self.steps_per_phase, strict=True) for _ in range(count)
        ]


def schedule_from_phases(
    steps_per_phase: Sequence[int], guidance: Sequence[float], switch_phase: int | None, two_experts: bool
) -> Schedule:
    experts = [
        0 if not two_experts or switch_phase is None or i < switch_phase else 1 for i in range(len(guidance))
    ]
    return Schedule(tuple(steps_per_phase), tuple(guidance), tuple(experts))


def schedule_by_expert(
    steps: int, guidance: float, guidance_2: float | None, switch_step: int | None
) -> Schedule:
    """Without a phase config: one phase, or one phase per expert split at `switch_step`."""
    if switch_step is None:
        return Schedule((steps,), (guidance,), (0,))
    second = guidance if guidance_2 is None else guidance_2
    return Schedule((switch_step, steps - switch_step), (guidance, second), (0, 1))


def switch_step_for_boundary(
    timesteps: Sequence[float], boundary_ratio: float, num_train_timesteps: int
) -> int:
    """Index of the first step the stock loop hands to the low-noise expert."""
    boundary = boundary_ratio * num_train_timesteps
    return next((i for i, t in enumerate(timesteps) if t < boundary), len(timesteps))


def boundary_ratio_between(timesteps: Sequence[float], switch_step: int, num_train_timesteps: int) -> float:
    """A `boundary_ratio` that puts steps [0, switch_step) on expert 0 and the rest on expert 1:
    the midpoint between the two timesteps around the switch."""
    if switch_step <= 0:
        return (float(timesteps[0]) + num_train_timesteps) / 2 / num_train_timesteps
    if switch_step >= len(timesteps):
        return float(timesteps[-1]) / 2 / num_train_timesteps
    return (float(timesteps[switch_step - 1]) + float(timesteps[switch_step])) / 2 / num_train_timesteps


@dataclass(frozen=True)
class StepSettings:
    expert: int
    guidance: float
    lora_weights: tuple[float, ...]


@dataclass(frozen=True)
class DenoisePlan:
    steps: tuple[StepSettings, ...]
    lora_names: tuple[str, ...]
    guidance_scale: float
    """The call's `guidance_scale`: CFG value of the high-noise expert (decides step one's CFG)."""
    guidance_scale_2: float | None
    """The call's `guidance_scale_2` (two experts only)."""
    switch_step: int | None

    @property
    def needs_negative_embeds(self) -> bool:
        """CFG turns on after a CFG-free first step: the negative prompt must be encoded up front
        (the pipeline only encodes it when the call starts with CFG on)."""
        return self.steps[0].guidance <= 1 and any(s.guidance > 1 for s in self.steps)

    def experts_using(self, lora_index: int) -> frozenset[int]:
        return frozenset(s.expert for s in self.steps if s.lora_weights[lora_index] != 0)


def build_plan(
    schedule: Schedule, loras: Sequence[tuple[str, str]], *, two_experts: bool, lora_field: str = "loras"
) -> DenoisePlan:
    """Per-step settings; `loras` is (adapter name, multiplier string) in application order."""
    experts = schedule.per_step(schedule.expert_per_phase)
    guidance = schedule.per_step(schedule.guidance_per_phase)
    weights = [
        parse_multiplier(multiplier, schedule.steps_per_phase, field=f"{lora_field}[{i}].multiplier")
        for i, (_, multiplier) in enumerate(loras)
    ]
    steps = tuple(
        StepSettings(experts[s], guidance[s], tuple(w[s] for w in weights)) for s in range(schedule.steps)
    )
    cfg_1 = _expert_cfg(steps, 0)
    cfg_2 = _expert_cfg(steps, 1)
    if cfg_1 is not None and steps[0].guidance <= 1:
        raise InvalidTaskParams(
            "guidance: CFG cannot turn on in a later high-noise phase when the first phase has none"
        )
    switch = next((i for i, s in enumerate(steps) if s.expert == 1), None) if two_experts else None
    return DenoisePlan(
        steps=steps,
        lora_names=tuple(name for name, _ in loras),
        guidance_scale=cfg_1 if cfg_1 is not None else 1.0,
        guidance_scale_2=(cfg_2 if cfg_2 is not None else 1.0) if two_experts else None,
        switch_step=switch,
    )


def _expert_cfg(steps: Sequence[StepSettings], expert: int) -> float | None:
    values = {s.guidance for s in steps if s.expert == expert and s.guidance > 1}
    if len(values) > 1:
        which = "high-noise" if expert == 0 else "low-noise"
        raise InvalidTaskParams(
            f"guidance: the {which} expert's phases use different CFG values > 1 {sorted(values)}; "
            "one value per expert is supported"
        )
    return values.pop() if values else None
