"""The Reigh test server on loopback, ReighQueue clients pointed at it, and worker processes.

Every test that uses the `server` fixture runs against both generations of Reigh's edge functions
(`2026-01`, `2026-04`); clients use the default `HW_REIGH_CONTRACT=auto`, so detection is exercised
everywhere."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from headless_wan.queue.reigh import DEFAULT_TIMEOUTS, ReighOptions, ReighQueue
from tests.integration.queue.conftest import WorkerProcess, spawn_worker
from tests.reigh_server import ReighServer
from tests.reigh_server.server import CONTRACTS

REPO = Path(__file__).resolve().parents[3]
PLUGINS = ["tests.fixtures.handlers:all_handlers", "tests.integration.reigh.handlers:reigh_handlers"]


def client(server: ReighServer, *, pat: bool = False, worker_id: str = "w1", **overrides: Any) -> ReighQueue:
    """A ReighQueue with quick retries. Timeouts are generous (a loaded CI machine must not time out a
    loopback call); the tests that hang a call set their own short ones."""
    timeouts = {**DEFAULT_TIMEOUTS, **{k: 10.0 for k in DEFAULT_TIMEOUTS}, **overrides.pop("timeouts", {})}
    options = ReighOptions(
        base_url=server.url,
        token=SecretStr(server.pat if pat else server.service_key),
        service_role=not pat,
        worker_id=worker_id,
        timeouts=timeouts,
        retry_attempts=overrides.pop("retry_attempts", 3),
        retry_backoff_s=0.01,
        retry_backoff_max_s=0.05,
        **overrides,
    )
    queue = ReighQueue(options)
    queue.open()
    return queue


def creates(server: ReighServer) -> list[dict[str, Any]]:
    """The create-task calls in the server's generation, as {task_id, task_type, project_id, params,
    dependant_on?}: a 2026-04 body's `input` carries the id and dependencies beside the params."""
    found = []
    for body in server.calls("create-task"):
        if ("family" in body) is not (server.contract == "2026-04"):
            continue  # auto's probe in the other generation's form, refused
        if "family" not in body:
            found.append(body)
            continue
        params = dict(body["input"])
        task_id, deps = params.pop("task_id"), params.pop("dependant_on", None)
        entry = {"task_id": task_id, "task_type": body["family"], "project_id": body["project_id"]}
        found.append({**entry, "params": params, **({"dependant_on": deps} if deps else {})})
    return found


def assert_no_client_errors(server: ReighServer) -> None:
    """No 4xx caused by the worker; against 2026-01 only auto-detection's refused 2026-04 create."""
    errors = server.client_errors()
    if server.contract == "2026-04":
        assert errors == []
    else:
        assert all(error == ("create-task", 400) for error in errors), errors


@pytest.fixture(params=CONTRACTS)
def contract(request: pytest.FixtureRequest) -> str:
    """The generation of the test server's edge functions."""
    return str(request.param)


def one_generation(contract: str) -> pytest.MarkDecorator:
    """Run an end-to-end case (tiny models through a worker process) against one generation only.

    What the generation changes on the worker's side is all in `queue/reigh/`: the `create-task` body
    (`creation.py`), what a refused status write answers (`status.py`), whether `mark_waiting` writes
    In Progress again and which heartbeat status a crash sends (`queue.py`), `follow_up` in the
    completion answer (`completion.py`), and the 2026-04 children's flattened `input` (`convert.py`, so
    a handler sees the same params either way). Every one of those is driven on both generations by the
    cheap fixture-handler cases (`test_reigh_worker.py`, `test_reigh_queue.py`,
    `test_reigh_generations.py`). A task type or a model changes what a handler computes and uploads, not
    which of those calls are made, so the expensive cases are split between the generations instead of
    each running twice. The parametrisation overrides the `contract` fixture's."""
    return pytest.mark.parametrize("contract", [contract])


@pytest.fixture
def server(tmp_path: Path, contract: str) -> Iterator[ReighServer]:
    with ReighServer(tmp_path / "reigh", contract=contract) as srv:
        yield srv


@pytest.fixture
def app_server(tmp_path: Path) -> Iterator[ReighServer]:
    """A 2026-04 server alone, for what only that generation does."""
    with ReighServer(tmp_path / "reigh-app", contract="2026-04") as srv:
        yield srv


@pytest.fixture
def queue(server: ReighServer) -> Iterator[ReighQueue]:
    q = client(server)
    yield q
    q.close()


@dataclass
class Site:
    """A Reigh test server plus worker processes pointed at it with Reigh's own variable names."""

    root: Path
    server: ReighServer
    procs: list[WorkerProcess] = field(default_factory=list)

    def env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HW_")}
        env.update(
            PYTHONPATH=str(REPO),
            HW_QUEUE="reigh",
            SUPABASE_URL=self.server.url,
            SUPABASE_SERVICE_ROLE_KEY=self.server.service_key,
            WORKER_ID="gpu-20260101_000000-test0001",
            HW_WORK_DIR=str(self.root / "work"),
            HW_HANDLER_PLUGINS=json.dumps(PLUGINS),
            HW_STARTUP_CHECK="false",
            HW_POLL_MIN_S="0.02",
            HW_POLL_MAX_S="0.2",
            HW_HEARTBEAT_INTERVAL_S="0.3",
            HW_REIGH_RETRY_BACKOFF_S="0.02",
            HW_REIGH_RETRY_BACKOFF_MAX_S="0.1",
            HW_LOG_FORMAT="json",
            HW_LOG_LEVEL="DEBUG",
        )
        env.update(overrides)
        return env

    def start_worker(self, *args: str, **env: str) -> WorkerProcess:
        worker = spawn_worker(self.root, len(self.procs), self.env(**env), args)
        self.procs.append(worker)
        return worker

    def all_output(self) -> str:
        return "".join(p.output() for p in self.procs)


@pytest.fixture
def site(tmp_path: Path, server: ReighServer) -> Iterator[Site]:
    site = Site(tmp_path, server)
    yield site
    for worker in site.procs:
        if worker.proc.poll() is None:
            worker.proc.kill()
        worker.proc.wait(timeout=30)
