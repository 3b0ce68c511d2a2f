"""The executor process on its own: a real spawned child running the fixture handlers, driven the
way the loop drives it (RunRequest over an in-memory queue)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from headless_wan.domain.tasks import ClaimedTask, NewTask, TaskStatus
from headless_wan.errors import ConfigError, ExecutorLost, TaskCancelled, WorkerFatal
from headless_wan.handlers.base import CancelToken
from headless_wan.queue.memory import InMemoryQueue
from headless_wan.storage.local import LocalStorage
from headless_wan.worker.context import QueueChildTasks
from headless_wan.worker.executor import Executor, WatchdogLimits
from headless_wan.worker.executor.messages import RemoteError
from headless_wan.worker.runner import RunRequest
from tests.fixtures.handlers import fixed_vram, registry

pytestmark = pytest.mark.slow


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, int, int]] = []
        self.started: list[str | None] = []

    def report(self, stage: str, step: int, total: int, message: str = "") -> None:
        self.events.append((stage, step, total))


@pytest.fixture
def queue(tmp_path: Path) -> InMemoryQueue:
    return InMemoryQueue(LocalStorage(tmp_path / "out"))


def executor(**limits: float) -> Executor:
    return Executor(registry, WatchdogLimits(**limits), cancel_timeout_s=0.5)  # type: ignore[arg-type]


@pytest.fixture
def ex() -> Iterator[Executor]:
    runner = executor()
    yield runner
    runner.close()


def claim(queue: InMemoryQueue, task_type: str, params: dict[str, object]) -> ClaimedTask:
    queue.enqueue(NewTask(task_type, params))
    claimed = queue.claim("w1")
    assert claimed is not None
    return claimed


def request(
    queue: InMemoryQueue, claimed: ClaimedTask, tmp_path: Path, cancel: CancelToken | None = None
) -> tuple[RunRequest, Recorder]:
    recorder = Recorder()
    workdir = tmp_path / "work" / claimed.id
    workdir.mkdir(parents=True, exist_ok=True)
    run = RunRequest(
        claim=claimed,
        workdir=workdir,
        cancel=cancel or CancelToken(),
        progress=recorder,
        children=QueueChildTasks(queue, claimed),
        lookup=queue,
        mark_started=lambda model=None: recorder.started.append(model),
        log=logging.LoggerAdapter(logging.getLogger("test.executor")),
    )
    return run, recorder


def test_the_child_stays_warm_across_tasks_and_streams_progress(
    ex: Executor, queue: InMemoryQueue, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.txt"
    ex.start()
    assert "echo" in ex.task_types and "hang" in ex.task_types
    for message in ("one", "two"):
        run, recorder = request(
            queue, claim(queue, "echo", {"message": message, "journal": str(journal), "model": "m"}), tmp_path
        )
        result = ex.run(run)
        assert result.output is not None and result.output.read_text() == message
        assert recorder.events == [("writing", 1, 1)] and recorder.started == ["m"]
    pids = {line.split()[1] for line in journal.read_text().splitlines()}
    assert pids == {str(ex.pid)} and ex.pid != os.getpid() and ex.starts == 1


def test_queue_services_are_answered_by_the_parent(
    ex: Executor, queue: InMemoryQueue, tmp_path: Path
) -> None:
    parent = claim(queue, "spawn", {"count": 2})
    run, _ = request(queue, parent, tmp_path)
    result = ex.run(run)
    assert result.waiting
    children = queue.children(parent.id)
    assert [c.params["message"] for c in children] == ["child 0", "child 1"]
    assert all(c.status is TaskStatus.QUEUED and c.parent_id == parent.id for c in children)


def test_handler_errors_come_back_with_their_class_or_name(
    ex: Executor, queue: InMemoryQueue, tmp_path: Path
) -> None:
    with pytest.raises(RuntimeError, match="kaboom") as boom:
        ex.run(request(queue, claim(queue, "boom", {}), tmp_path)[0])
    assert "in the executor process" in "".join(boom.value.__notes__)
    with pytest.raises(WorkerFatal, match="illegal memory access"):
        ex.run(request(queue, claim(queue, "fatal", {}), tmp_path)[0])
    assert ex.starts == 1  # errors a handler raises do not cost the warm process
    assert not isinstance(RemoteError("X", "y"), WorkerFatal)


def test_a_cancel_reaches_the_handler(ex: Executor, queue: InMemoryQueue, tmp_path: Path) -> None:
    started = tmp_path / "started"
    cancel = CancelToken()
    run, _ = request(queue, claim(queue, "wait", {"started_file": str(started)}), tmp_path, cancel)
    threading.Thread(target=lambda: _cancel_when(started, cancel), daemon=True).start()
    with pytest.raises(TaskCancelled) as cancelled:
        ex.run(run)
    assert cancelled.value.reason == "shutdown" and ex.starts == 1


def test_a_task_that_ignores_the_cancel_gets_its_process_killed(
    ex: Executor, queue: InMemoryQueue, tmp_path: Path
) -> None:
    started = tmp_path / "started"
    cancel = CancelToken()
    run, _ = request(
        queue, claim(queue, "wait", {"started_file": str(started), "ignore_cancel": True}), tmp_path, cancel
    )
    threading.Thread(target=lambda: _cancel_when(started, cancel), daemon=True).start()
    with pytest.raises(TaskCancelled, match="executor process killed"):
        ex.run(run)
    echo = request(queue, claim(queue, "echo", {"message": "after"}), tmp_path)[0]
    assert ex.run(echo).output is not None and ex.starts == 2


def test_a_stalled_task_is_killed_once_then_failed(queue: InMemoryQueue, tmp_path: Path) -> None:
    runner = executor(stall_s=0.5)
    try:
        hung = claim(queue, "hang", {})
        with pytest.raises(ExecutorLost, match=r"stalled: no progress for 0.5 s") as first:
            runner.run(request(queue, hung, tmp_path)[0])
        assert first.value.kind == "stalled" and not first.value.repeated
        with pytest.raises(ExecutorLost) as second:
            runner.run(request(queue, hung, tmp_path)[0])
        assert second.value.repeated and runner.starts == 2
    finally:
        runner.close()


def test_a_task_past_its_type_timeout_is_killed(queue: InMemoryQueue, tmp_path: Path) -> None:
    runner = executor(stall_s=0, timeouts={"hang": 0.5})  # type: ignore[arg-type]
    try:
        with pytest.raises(ExecutorLost, match=r"timed out after 0\.5 s") as lost:
            runner.run(request(queue, claim(queue, "hang", {}), tmp_path)[0])
        assert lost.value.kind == "timed_out"
    finally:
        runner.close()


@pytest.mark.parametrize("signame", ["SIGSEGV", "SIGKILL"])
def test_a_child_that_dies_is_reported_with_its_signal_and_replaced(
    ex: Executor, queue: InMemoryQueue, tmp_path: Path, signame: str
) -> None:
    with pytest.raises(ExecutorLost, match=f"killed by signal {signame}") as lost:
        ex.run(request(queue, claim(queue, "crash", {"signal": signame}), tmp_path)[0])
    assert lost.value.kind == "died"
    assert ex.run(request(queue, claim(queue, "echo", {"message": "x"}), tmp_path)[0]).output is not None
    assert ex.starts == 2


def test_allocating_past_the_memory_limit_fails_the_task_and_replaces_the_child(
    ex: Executor, queue: InMemoryQueue, tmp_path: Path
) -> None:
    with pytest.raises(MemoryError):
        ex.run(request(queue, claim(queue, "hog", {"limit_mb": 128}), tmp_path)[0])
    assert ex.run(request(queue, claim(queue, "echo", {"message": "x"}), tmp_path)[0]).output is not None
    assert ex.starts == 2  # a process that hit MemoryError is not trusted with the next task


def test_system_exit_in_a_handler_comes_back_as_system_exit(
    ex: Executor, queue: InMemoryQueue, tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as stopped:
        ex.run(request(queue, claim(queue, "exit", {"code": 3}), tmp_path)[0])
    assert stopped.value.code == 3
    with pytest.raises(KeyboardInterrupt):
        ex.run(request(queue, claim(queue, "exit", {"interrupt": True}), tmp_path)[0])


def test_a_broken_plugin_is_a_config_error_at_start() -> None:
    runner = Executor(_broken_factory, WatchdogLimits())
    with pytest.raises(ConfigError, match="could not start: ConfigError: no such plugin"):
        runner.start()
    runner.close()


def _broken_factory() -> object:
    raise ConfigError("no such plugin")


def _cancel_when(started: Path, cancel: CancelToken) -> None:
    from tests.helpers import wait_for

    wait_for(started.exists, what="the task to start")
    cancel.cancel("shutdown")


def test_vram_figures_come_from_the_child_with_its_progress(queue: InMemoryQueue, tmp_path: Path) -> None:
    runner = Executor(registry, WatchdogLimits(), vram_probe=fixed_vram)  # type: ignore[arg-type]
    try:
        assert runner.vram_usage() == (0, 0)
        runner.run(request(queue, claim(queue, "echo", {"message": "x"}), tmp_path)[0])
        assert runner.vram_usage() == (24_000, 1_234)
    finally:
        runner.close()
