"""The VACE bridge handlers as one set, for the composition root: `join_clips_orchestrator`,
`join_clips_segment`, `join_final_stitch`, `inpaint_frames` and `edit_video_orchestrator`. Pass the engine every other generation
handler uses (it owns the resident pipeline)."""

from __future__ import annotations

from typing import Any

from headless_wan.handlers.base import Handler
from headless_wan.handlers.bridge_generation import JoinConfig
from headless_wan.handlers.edit_orchestrator import EditVideoOrchestratorHandler
from headless_wan.handlers.inpaint_frames import InpaintFramesHandler
from headless_wan.handlers.join_orchestrator import JoinClipsOrchestratorHandler
from headless_wan.handlers.join_segment import JoinClipsSegmentHandler
from headless_wan.handlers.join_stitch import JoinFinalStitchHandler

__all__ = ["JoinConfig", "join_handlers"]


def join_handlers(engine: Any, config: JoinConfig) -> list[Handler]:
    return [
        JoinClipsOrchestratorHandler(engine, config),
        JoinClipsSegmentHandler(engine, config),
        JoinFinalStitchHandler(config),
        InpaintFramesHandler(engine, config),
        EditVideoOrchestratorHandler(engine, config),
    ]
