"""Model presets: what a model name in a task means (family, weights, schedule, limits, LoRAs).

Presets are data (`configs/presets.toml`); this module parses them into frozen objects and
resolves the names tasks carry (preset names or Reigh/WGP aliases). Pure Python: no torch.

A model override (`--model-override`) swaps weights, not validation: the task's own model name is
resolved first (an unknown name still fails the task), then the override runs in its place, as its
counterpart in the task model's family when the families differ (`tiny` → `tiny-i2v` for an I2V
model), so the task still runs its family's code path.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headless_wan.engine.families import FAMILIES
from headless_wan.errors import ConfigError, InvalidTaskParams

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_PRESETS_FILE = Path(__file__).resolve().parents[2] / "configs" / "presets.toml"
BUILTIN_PREFIX = "builtin:"
SOLVERS = ("unipc", "euler")


@dataclass(frozen=True)
class PresetLora:
    """A LoRA a preset always applies: `source` is an http(s) URL or a local path."""

    source: str
    multiplier: str = "1.0"


@dataclass(frozen=True)
class PresetPhases:
    """A default phase schedule (same meaning as Reigh's `phase_config`)."""

    steps_per_phase: tuple[int, ...]
    guidance_per_phase: tuple[float, ...]
    model_switch_phase: int | None = None


@dataclass(frozen=True)
class Preset:
    name: str
    weights: str
    family: str = "vace"
    """Pipeline family (`engine/families`): vace, i2v."""
    description: str = ""
    experts: int = 1
    boundary_ratio: float | None = None
    dtype: str = "bfloat16"
    steps: int = 30
    guidance_scale: float = 5.0
    guidance_scale_2: float | None = None
    flow_shift: float = 5.0
    solver: str = "unipc"
    fps: int = 16
    negative_prompt: str = ""
    resolutions: tuple[str, ...] = ()
    max_pixels: int = 921600
    max_frames: int = 161
    memory_profile: str = "resident"
    loras: tuple[PresetLora, ...] = ()
    phases: PresetPhases | None = None
    vram_gb: Mapping[str, float] = field(default_factory=dict)
    counterparts: Mapping[str, str] = field(default_factory=dict)
    """family → preset that stands in for this one, as a model override, for tasks of that family."""

    @property
    def is_builtin(self) -> bool:
        return self.weights.startswith(BUILTIN_PREFIX)

    @property
    def two_experts(self) -> bool:
        return self.experts == 2


@dataclass(frozen=True)
class PresetRegistry:
    presets: Mapping[str, Preset]
    aliases: Mapping[str, str] = field(default_factory=dict)
    task_defaults: Mapping[str, str] = field(default_factory=dict)

    def names(self) -> list[str]:
        return sorted(self.presets)

    def known_names(self) -> list[str]:
        return sorted([*self.presets, *self.aliases])

    def resolve(self, model: str) -> Preset:
        """The preset a task's model name means; an unknown name is the task's fault."""
        name = model.strip()
        target = name if name in self.presets else self.aliases.get(name)
        if target is None:
            raise InvalidTaskParams(
                f"model: unknown model {model!r} (known: {', '.join(self.known_names())})"
            )
        return self.presets[target]

    def with_override(self, asked: Preset, override: str) -> Preset:
        """The preset an override runs for a task whose model is `asked`: the override itself,
        or its counterpart in `asked`'s family."""
        forced = self.resolve(override)
        if forced.family == asked.family:
            return forced
        counterpart = forced.counterparts.get(asked.family)
        if counterpart is None:
            raise InvalidTaskParams(
                f"model: {asked.name} is a {asked.family} model and the model override {override!r} "
                f"({forced.family}) has no {asked.family} counterpart"
            )
        return self.presets[counterpart]

    def default_model(self, task_type: str) -> str | None:
        return self.task_defaults.get(task_type)


def load_presets(path: Path | None = None) -> PresetRegistry:
    """Read and check a presets file (default: `configs/presets.toml` of this checkout)."""
    path = path or DEFAULT_PRESETS_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read presets file {path}: {exc}") from exc
    return parse_presets(data, source=str(path))


def parse_presets(data: Mapping[str, Any], *, source: str = "presets") -> PresetRegistry:
    raw_presets = data.get("presets") or {}
    if not raw_presets:
        raise ConfigError(f"{source}: no [presets.*] tables")
    presets = {name: _parse_preset(name, body, source) for name, body in raw_presets.items()}
    aliases = {str(k): str(v) for k, v in (data.get("aliases") or {}).items()}
    task_defaults = {str(k): str(v) for k, v in (data.get("task_defaults") or {}).items()}
    if "substitutions" in data:
        raise ConfigError(
            f"{source}: [substitutions] is gone: every model runs as named (give it a preset and an alias)"
        )
    registry = PresetRegistry(presets=presets, aliases=aliases, task_defaults=task_defaults)
    for alias, target in aliases.items():
        if target not in presets:
            raise ConfigError(f"{source}: alias {alias!r} points at unknown preset {target!r}")
    for preset in presets.values():
        for family, target in preset.counterparts.items():
            other = presets.get(target)
            if other is None or other.family != family:
                raise ConfigError(
                    f"{source}: preset {preset.name!r}: counterpart {target!r} is not a {family} preset"
                )
    for task_type, model in task_defaults.items():
        if model not in presets and model not in aliases:
            raise ConfigError(f"{source}: default model {model!r} for {task_type!r} is not a preset")
    return registry


_PRESET_KEYS = {
    "weights", "family", "counterparts", "description", "experts", "boundary_ratio", "dtype", "steps", "guidance_scale",
    "guidance_scale_2", "flow_shift", "solver", "fps", "negative_prompt", "resolutions", "max_pixels",
    "max_frames", "memory_profile", "loras", "phases", "vram_gb",
}  # fmt: skip


def _parse_preset(name: str, body: Mapping[str, Any], source: str) -> Preset:
    where = f"{source}: preset {name!r}"
    unknown = set(body) - _PRESET_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    if "weights" not in body:
        raise ConfigError(f"{where}: 'weights' is required")
    values = dict(body)
    values["resolutions"] = tuple(values.get("resolutions", ()))
    values["loras"] = tuple(
        PresetLora(source=str(item["source"]), multiplier=str(item.get("multiplier", "1.0")))
        for item in values.get("loras", ())
    )
    if "phases" in values:
        phases = values["phases"]
        values["phases"] = PresetPhases(
            steps_per_phase=tuple(int(s) for s in phases["steps_per_phase"]),
            guidance_per_phase=tuple(float(g) for g in phases["guidance_per_phase"]),
            model_switch_phase=phases.get("model_switch_phase"),
        )
    values["vram_gb"] = dict(values.get("vram_gb", {}))
    values["counterparts"] = {str(k): str(v) for k, v in values.get("counterparts", {}).items()}
    preset = Preset(name=name, **values)
    _check_preset(preset, where)
    return preset


def _check_preset(preset: Preset, where: str) -> None:
    if preset.family not in FAMILIES:
        raise ConfigError(f"{where}: family must be one of {sorted(FAMILIES)}")
    if preset.experts not in (1, 2):
        raise ConfigError(f"{where}: experts must be 1 or 2")
    if preset.two_experts != (preset.boundary_ratio is not None):
        raise ConfigError(f"{where}: a two-expert preset needs boundary_ratio (and only it)")
    if preset.solver not in SOLVERS:
        raise ConfigError(f"{where}: solver must be one of {SOLVERS}")
    if preset.dtype not in ("bfloat16", "float16", "float32"):
        raise ConfigError(f"{where}: dtype must be bfloat16, float16 or float32")
    phases = preset.phases
    if phases is not None:
        if len(phases.steps_per_phase) != len(phases.guidance_per_phase):
            raise ConfigError(f"{where}: phases need one guidance value per phase")
        if sum(phases.steps_per_phase) != preset.steps:
            raise ConfigError(f"{where}: steps must equal the sum of phases.steps_per_phase")
