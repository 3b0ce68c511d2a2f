"""Generation engine: Wan pipelines on diffusers behind a small, typed API. The preset's family
(`engine/families`: VACE, image-to-video) picks the pipeline class, its request rules and call inputs.

Importing this package never imports torch or diffusers (they load on the first generation);
a test asserts it.

    engine = Engine(engine_config_from_settings(settings))
    result = engine.generate(GenerationRequest(...), on_progress=..., cancel_check=...)
"""

from __future__ import annotations

from headless_wan.engine.config import EngineConfig, engine_config_from_settings
from headless_wan.engine.device import FitnessReport, vram_usage
from headless_wan.engine.generate import Engine, GenerationResult
from headless_wan.engine.loras import LoraSpec
from headless_wan.engine.phases import PhaseConfig, parse_multiplier, parse_phase_config
from headless_wan.engine.presets import Preset, PresetRegistry, load_presets
from headless_wan.engine.profiles import PROFILES, MemoryProfile
from headless_wan.engine.request import GenerationRequest, fit_frames

__all__ = [
    "PROFILES",
    "Engine",
    "EngineConfig",
    "FitnessReport",
    "GenerationRequest",
    "GenerationResult",
    "LoraSpec",
    "MemoryProfile",
    "PhaseConfig",
    "Preset",
    "PresetRegistry",
    "engine_config_from_settings",
    "fit_frames",
    "load_presets",
    "parse_multiplier",
    "parse_phase_config",
    "vram_usage",
]
