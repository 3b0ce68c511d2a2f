"""Worker processes on a real SQLite queue file, with the fixture handlers plugged in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from headless_wan.domain.tasks import NewTask, Task
from headless_wan.queue.sqlite import SqliteQueue

REPO = Path(__file__).resolve().parents[3]


@dataclass
class Site:
    """One SQLite queue plus the environment that points worker processes at it."""

    root: Path
    procs: list[WorkerProcess] = field(default_factory=list)

    @property
    def db(self) -> Path:
        return self.root / "queue.sqlite3"

    def env(self, **overrides: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HW_")}
        env.update(
            PYTHONPATH=str(REPO),
            HW_SQLITE_PATH=str(self.db),
            HW_OUTPUT_DIR=str(self.root / "out"),
            HW_WORK_DIR=str(self.root / "work"),
            HW_HANDLER_PLUGINS=json.dumps(["tests.fixtures.handlers:all_handlers"]),
            HW_STARTUP_CHECK="false",  # skip the torch import in each worker process; tested once below
            HW_POLL_MIN_S="0.02",
            HW_POLL_MAX_S="0.2",
            HW_LOG_FORMAT="json",
        )
        env.update(overrides)
        return env

    def queue(self) -> SqliteQueue:
        q = SqliteQueue(self.db)
        q.open()
        return q

    def submit(self, task_type: str, params: dict[str, object]) -> str:
        q = self.queue()
        try:
            return q.enqueue(NewTask(task_type, params))
        finally:
            q.close()

    def get(self, task_id: str) -> Task:
        q = self.queue()
        try:
            task = q.get(task_id)
        finally:
            q.close()
        assert task is not None
        return task

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "headless_wan", *args],
            env=self.env(**env),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def start_worker(self, *args: str, **env: str) -> WorkerProcess:
        worker = spawn_worker(self.root, len(self.procs), self.env(**env), args)
        self.procs.append(worker)
        return worker


def spawn_worker(root: Path, index: int, env: dict[str, str], args: Sequence[str]) -> WorkerProcess:
    """`python -m headless_wan worker ARGS` in `root`, its output in `root/worker-<index>.log`."""
    log = root / f"worker-{index}.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "headless_wan", "worker", *args],
            env=env,
            cwd=root,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    return WorkerProcess(proc, log)


@dataclass
class WorkerProcess:
    proc: subprocess.Popen[str]
    log: Path

    def output(self) -> str:
        return self.log.read_text()

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout_s: float = 60) -> int:
        """Exit code; fails the test if the process does not exit in time."""
        return self.proc.wait(timeout=timeout_s)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    site = Site(tmp_path)
    yield site
    for worker in site.procs:
        if worker.proc.poll() is None:
            worker.proc.kill()
        worker.proc.wait(timeout=30)
