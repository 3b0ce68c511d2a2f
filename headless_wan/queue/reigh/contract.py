"""Which generation of Reigh's edge-function contract the server speaks, decided once per process.

Two generations are in use:
- `2026-01` (`banodoco/Reigh`, `reigh-contract.md`): `create-task` takes `{task_type, params, ...}`,
  status guards answer 400, In Progress may be written again, the heartbeat knows no `crashed`.
- `2026-04` (`banodoco/reigh-app`): `create-task` takes `{family, project_id, input,
  idempotency_key}`, `update-task-status` enforces a transition table (refusals are 409),
  `complete_task` answers `follow_up`, and a `crashed` heartbeat requeues what the worker held.

`HW_REIGH_CONTRACT=auto` decides from the server's own answers: the first `create-task` is sent in
the 2026-04 form and a 2026-01 server's "params, task_type required" refusal switches to 2026-01;
a 409 from `update-task-status`, a `follow_up` in a completion answer or a "family field is required"
refusal mean 2026-04. Until something decides, every write is one both generations accept.

The decision is shared by every client of one server and credential in the process (the worker's
loop and its heartbeat thread each have their own queue object).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from enum import Enum

logger = logging.getLogger(__name__)


class Contract(str, Enum):
    AUTO = "auto"
    V2026_01 = "2026-01"
    V2026_04 = "2026-04"


class ContractState:
    """The generation in use: fixed by configuration, or learnt (once) from the server."""

    def __init__(self, configured: Contract) -> None:
        self._lock = threading.Lock()
        self.configured = configured
        self._decided: Contract | None = None if configured is Contract.AUTO else configured

    @property
    def current(self) -> Contract | None:
        """The decided generation, or None while `auto` has not learnt it yet."""
        return self._decided

    def is_2026_04(self) -> bool:
        return self._decided is Contract.V2026_04

    def is_2026_01(self) -> bool:
        return self._decided is Contract.V2026_01

    def learn(self, generation: Contract, evidence: str) -> None:
        """Record what the server's answer showed. Only `auto` learns, and only the first time."""
        with self._lock:
            if self._decided is not None:
                return
            self._decided = generation
        logger.info(
            "Reigh server speaks the %s edge-function contract (%s)",
            generation.value,
            evidence,
            extra={"action": "reigh_contract"},
        )


_STATES: dict[tuple[str, str], ContractState] = {}
_STATES_LOCK = threading.Lock()


def shared_state(base_url: str, credential: str, configured: Contract) -> ContractState:
    """The one state of this process for (server, credential, setting)."""
    digest = hashlib.sha256(credential.encode()).hexdigest()[:16]
    key = (f"{base_url.rstrip('/')}|{configured.value}", digest)
    with _STATES_LOCK:
        state = _STATES.get(key)
        if state is None:
            state = _STATES[key] = ContractState(configured)
        return state
