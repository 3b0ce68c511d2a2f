"""A Reigh-compatible server for tests only: real HTTP on loopback over a real SQLite store.

Implements the endpoints of `reigh-contract.md` with their documented quirks, plus fault injection
(`server.faults`) and the browser's direct cancel (`server.cancel`). Never used by the package.
"""

from __future__ import annotations

from tests.reigh_server.faults import Faults
from tests.reigh_server.server import ReighServer

__all__ = ["Faults", "ReighServer"]
