"""The Reigh backend: Reigh's Supabase edge functions as a task queue (`reigh-contract.md`)."""

from __future__ import annotations

from headless_wan.queue.reigh.options import DEFAULT_TIMEOUTS, ReighOptions
from headless_wan.queue.reigh.queue import PredecessorOutputs, ReighQueue

__all__ = ["DEFAULT_TIMEOUTS", "PredecessorOutputs", "ReighOptions", "ReighQueue"]
