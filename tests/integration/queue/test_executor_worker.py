"""Real worker processes whose handlers run in the executor process: a hang, a segfault, an OOM
kill, a SystemExit or a lost device in the generation never takes the worker or the work down."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from headless_wan.domain.tasks import TaskStatus
from tests.helpers import wait_for
from tests.integration.queue.conftest import REPO, Site

pytestmark = pytest.mark.slow


def pids(journal: Path, task_id: str) -> list[int]:
    if not journal.exists():
        return []
    return [int(line.split()[1]) for line in journal.read_text().splitlines() if line.split()[0] == task_id]


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for a reaper)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_a_hung_task_is_killed_released_once_then_failed_and_the_worker_serves_the_next(site: Site) -> None:
    journal = site.root / "journal.txt"
    hung = site.submit("hang", {"journal": str(journal)})
    after = site.submit("echo", {"message": "next", "journal": str(journal)})
    result = site.cli("worker", "--drain", HW_TASK_STALL_S="1")
    assert result.returncode == 0, result.stderr
    row = site.get(hung)
    assert row.status is TaskStatus.FAILED and row.attempts == 1
    assert "Task stalled: no progress for 1 s (last progress: none since the start)" in (
        row.error_message or ""
    )
    assert len(pids(journal, hung)) == 2  # released once, run once more, then failed
    assert site.get(after).status is TaskStatus.COMPLETE
    executors = {*pids(journal, hung), *pids(journal, after)}
    assert len(executors) == 3 and os.getpid() not in executors  # a fresh executor each time


def test_a_task_past_its_type_time_limit_fails_at_once(site: Site) -> None:
    hung = site.submit("hang", {})
    result = site.cli("worker", "--drain", HW_TASK_STALL_S="0", HW_TASK_TIMEOUTS='{"hang": 1}')
    assert result.returncode == 0, result.stderr
    row = site.get(hung)
    assert row.status is TaskStatus.FAILED and row.attempts == 0
    assert "Task timed out after 1 s" in (row.error_message or "")


def test_dead_executors_and_memory_errors_fail_their_task_not_the_worker(site: Site) -> None:
    """A segfault, an OOM kill and a MemoryError, each on its own task, through one worker: the cases are
    independent (a fresh executor follows each death), so they share one worker process's start-up."""
    journal = site.root / "journal.txt"
    crashes = {
        signame: site.submit("crash", {"signal": signame, "journal": str(journal)})
        for signame in ("SIGSEGV", "SIGKILL")  # a segfault in native code; the OOM killer
    }
    hog = site.submit("hog", {"limit_mb": 128})
    after = site.submit("echo", {"message": "still serving"})
    result = site.cli("worker", "--drain")
    assert result.returncode == 0, result.stderr
    for signame, crash in crashes.items():
        row = site.get(crash)
        assert row.status is TaskStatus.FAILED and row.attempts == 1, (signame, row)
        assert f"Executor process died (killed by signal {signame}" in (row.error_message or "")
        assert len(pids(journal, crash)) == 2, signame  # released once, run once more, then failed
    assert site.get(hog).error_message == "The hog handler ran out of host memory (MemoryError)"
    assert site.get(after).status is TaskStatus.COMPLETE


def test_system_exit_in_a_handler_releases_the_task_and_stops_the_worker(site: Site) -> None:
    stopping = site.submit("exit", {"code": 3})
    result = site.cli("worker", "--drain")
    assert result.returncode == 3, result.stderr
    row = site.get(stopping)
    assert row.status is TaskStatus.QUEUED and row.attempts == 1
    assert "worker stopped (SystemExit)" in (row.error_message or "")


def test_device_loss_releases_the_task_and_exits_non_zero(site: Site) -> None:
    doomed = site.submit("fatal", {})
    result = site.cli("worker", "--drain")
    assert result.returncode == 70, result.stderr
    row = site.get(doomed)
    assert row.status is TaskStatus.QUEUED and "illegal memory access" in (row.error_message or "")


def test_a_killed_worker_takes_its_executor_with_it(site: Site) -> None:
    journal = site.root / "journal.txt"
    task_id = site.submit("wait", {"journal": str(journal)})
    worker = site.start_worker()
    child = wait_for(lambda: pids(journal, task_id), what="the executor to start the task")[0]
    assert child != worker.proc.pid and alive(child)
    worker.signal(signal.SIGKILL)
    worker.wait()
    wait_for(lambda: not alive(child), what="the orphaned executor to die")


def test_plugins_load_in_the_executor_and_a_broken_one_stops_the_worker_at_start(site: Site) -> None:
    result = site.cli("worker", "--drain", HW_HANDLER_PLUGINS='["tests.fixtures.no_such_module:handlers"]')
    assert result.returncode == 2
    assert "cannot load handler plugin" in result.stderr and "no_such_module" in result.stderr


def maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_a_real_generation_runs_in_the_executor_and_the_worker_never_loads_torch(site: Site) -> None:
    example = json.loads((REPO / "examples" / "generate_video.json").read_text())
    task_id = site.submit(example["task_type"], example["params"])
    worker = site.start_worker(HW_MODEL_OVERRIDE="tiny", HW_DEVICE="cpu", HW_STARTUP_CHECK="true")
    wait_for(
        lambda: site.get(task_id).status.is_terminal, timeout_s=300, what=f"the generation\n{worker.output()}"
    )
    row = site.get(task_id)
    assert row.status is TaskStatus.COMPLETE, row.error_message
    assert Path(row.output_location or "").stat().st_size > 0
    executor = [pid for pid in _children(worker.proc.pid) if "spawn_main" in _cmdline(pid)]
    assert len(executor) == 1
    assert "libtorch" in maps(executor[0]) and "libtorch" not in maps(worker.proc.pid)
    assert '"action": "fitness"' in worker.output()  # the GPU check ran, in the executor
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0, worker.output()


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
