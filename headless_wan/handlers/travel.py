"""The travel handlers as one set, for the composition root.

    handlers = travel_handlers(engine, TravelConfig(allow_local_inputs=..., download_max_mb=...,
                                                     download_timeout_s=...))

Pass the same `Engine` the other generation handlers use: it owns the resident pipeline, and two
engines would load two copies of the model.
"""

from __future__ import annotations

from typing import Any

from headless_wan.engine import parse_phase_config
from headless_wan.handlers.base import Handler
from headless_wan.handlers.travel_inputs import TravelConfig
from headless_wan.handlers.travel_orchestrator import TravelOrchestratorHandler
from headless_wan.handlers.travel_segment import TravelSegmentHandler
from headless_wan.handlers.travel_single import single_segment_handlers
from headless_wan.handlers.travel_stitch import TravelStitchHandler

__all__ = ["TravelConfig", "travel_handlers"]


def travel_handlers(engine: Any, config: TravelConfig) -> list[Handler]:
    """`travel_orchestrator`, `travel_segment`, `travel_stitch`, `individual_travel_segment` and
    `wan_2_2_i2v`.

    The orchestrator checks model names through `engine.preset` (a TOML lookup; no torch) and
    phase configs through the engine's parser, so a bad payload fails before any child exists.
    """
    return [
        TravelOrchestratorHandler(
            config,
            model_check=engine.preset,
            phase_check=parse_phase_config,
            family_check=engine.model_in_family,
        ),
        TravelSegmentHandler(engine, config),
        TravelStitchHandler(config),
        *single_segment_handlers(engine, config, phase_check=parse_phase_config),
    ]
