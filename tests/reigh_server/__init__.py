"""A Reigh-compatible server for tests only: real HTTP on loopback over a real SQLite store.

Implements the endpoints of `reigh-contract.md` (the 2026-01 generation) with their documented quirks,
or, with `contract="2026-04"`, those of `banodoco/reigh-app` HEAD where they differ (`app_2026_04.py`);
plus fault injection (`server.faults`) and the browser's direct cancel (`server.cancel`). Never used by
the package.
"""

from __future__ import annotations

from tests.reigh_server.faults import Faults
from tests.reigh_server.server import ReighServer

__all__ = ["Faults", "ReighServer"]
