"""Everything the Reigh backend needs to know, built from Settings by the composition root.

The queue layer does not import `headless_wan.config`; `wiring.build_queue` fills this in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import SecretStr

from headless_wan.queue.reigh.wire import Fn

# Predecessor defaults (`reigh-contract.md` §9), in seconds.
DEFAULT_TIMEOUTS: Mapping[str, float] = {
    Fn.CLAIM.value: 15.0,
    Fn.UPDATE_STATUS.value: 30.0,
    Fn.COMPLETE.value: 60.0,
    Fn.UPLOAD_URL.value: 30.0,
    Fn.CREATE_TASK.value: 45.0,
    Fn.TASK_OUTPUT.value: 15.0,
    Fn.PREDECESSOR.value: 15.0,
    Fn.CHILDREN.value: 15.0,
    Fn.SEGMENTS.value: 15.0,
    Fn.WORKER_MODEL.value: 5.0,
    "heartbeat": 10.0,
    "postgrest": 15.0,
    "put": 600.0,
    "thumbnail_put": 60.0,
}


@dataclass(frozen=True)
class ReighOptions:
    base_url: str
    token: SecretStr = field(repr=False)
    service_role: bool = True
    """True: the service-role key (fleet worker). False: a user's personal access token (PAT),
    best effort only: no heartbeat, no model affinity, no claim verification, no PostgREST reads."""
    worker_id: str = "headless-wan"
    function_urls: Mapping[str, str] = field(default_factory=dict)
    timeouts: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TIMEOUTS))
    retry_attempts: int = 3
    retry_backoff_s: float = 1.0
    retry_backoff_max_s: float = 10.0
    complete_attempts: int = 4
    """complete_task calls per `complete()`, each after confirming the task is still In Progress."""
    max_attempts: int = 3
    same_model_only: bool = False
    max_task_wait_minutes: int | None = None
    """2026-04 claims: how long a task may wait before model affinity gives way (server default 5)."""
    base64_max_bytes: int = 2 * 1024 * 1024
    contract: str = "auto"
    """`auto`, `2026-01` or `2026-04`: which generation of the edge functions to speak (`contract.py`)."""

    def timeout(self, name: str) -> float:
        return float(self.timeouts.get(name, DEFAULT_TIMEOUTS.get(name, 30.0)))

    def function_url(self, fn: Fn) -> str:
        override = self.function_urls.get(fn.value)
        return override or f"{self.base_url.rstrip('/')}/functions/v1/{fn.value}"
