"""Payload size and nesting limits: task files (run/submit) and claimed tasks."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from headless_wan.cli import main
from headless_wan.domain.payload_limits import PayloadLimits, PayloadTooLarge, object_depth
from headless_wan.domain.task_file import TaskFileError, load_task_file
from headless_wan.domain.tasks import NewTask, TaskStatus
from headless_wan.queue.memory import InMemoryQueue
from headless_wan.storage.local import LocalStorage
from headless_wan.worker.dispatch import HandlerRegistry
from headless_wan.worker.heartbeat import Heartbeat
from headless_wan.worker.loop import Worker, WorkerOptions
from tests.fixtures.handlers import all_handlers


def nested(levels: int) -> object:
    value: object = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def deep_text(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_text_depth_ignores_brackets_inside_strings() -> None:
    limits = PayloadLimits(max_depth=3)
    limits.check_text(json.dumps({"a": {"b": ["[[[[{{{{", 'say "[[" \\"{{']}}), "t")  # depth 3
    with pytest.raises(PayloadTooLarge, match=r"t nests 4 levels deep, over the limit of 3"):
        limits.check_text(json.dumps({"a": {"b": [["x"]]}}), "t")


def test_size_is_checked_in_bytes() -> None:
    limits = PayloadLimits(max_bytes=10)
    limits.check_text('"abcdefgh"', "t")
    with pytest.raises(PayloadTooLarge, match=r"over the 0 KiB limit \(HW_MAX_TASK_JSON_KB\)"):
        limits.check_text('"äbcdefgh"', "t")  # 10 characters, 11 bytes


def test_object_depth_walks_without_recursion() -> None:
    assert object_depth("x") == 0
    assert object_depth({}) == 1
    assert object_depth({"a": [1, {"b": []}]}) == 4
    assert object_depth(nested(50_000)) == 50_000  # far past the interpreter's recursion limit
    assert object_depth(nested(50_000), stop_past=10) == 11


def test_a_task_file_nested_5000_levels_gets_a_message_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"task_type": "vace", "params": {"p": ' + deep_text(5000) + "}}")
    with pytest.raises(
        TaskFileError, match=r"deep\.json: the task file nests 5002 levels deep, over the limit of 64"
    ):
        load_task_file(path)
    for command in ("submit", "run"):
        assert main([command, str(path), "--sqlite-path", str(tmp_path / "q.sqlite3")]) == 2
        err = capsys.readouterr().err
        assert "nests 5002 levels deep" in err and "Traceback" not in err


def test_an_oversized_task_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"task_type": "vace", "params": {"prompt": "x" * 3 * 1024 * 1024}}))
    with pytest.raises(TaskFileError, match=r"big\.json: the task file is 3072 KiB, over the 2048 KiB limit"):
        load_task_file(path)
    assert load_task_file(path, PayloadLimits(max_bytes=4 * 1024 * 1024)).task_type == "vace"


def test_a_claimed_payload_over_the_limits_fails_and_the_worker_carries_on(tmp_path: Path) -> None:
    queue = InMemoryQueue(LocalStorage(tmp_path / "out"), lease_s=30, max_attempts=3)
    deep = queue.enqueue(NewTask("echo", {"message": "x", "extra": nested(200)}))
    large = queue.enqueue(NewTask("echo", {"message": "y" * 5000}))
    fine = queue.enqueue(NewTask("echo", {"message": "fine"}))
    options = WorkerOptions(worker_id="w1", work_dir=tmp_path / "work", drain=True, poll_min_s=0.01)
    heartbeat = Heartbeat(queue, "w1", 0.05, logging.getLogger("test.heartbeat"))
    registry = HandlerRegistry(all_handlers(), limits=PayloadLimits(max_bytes=4096, max_depth=64))
    assert Worker(queue, registry, heartbeat, options).run() == 0
    deep_task, large_task, fine_task = (queue.get(task_id) for task_id in (deep, large, fine))
    assert deep_task is not None and deep_task.status is TaskStatus.FAILED
    assert "params nests at least 65 levels deep, over the limit of 64" in (deep_task.error_message or "")
    assert large_task is not None and large_task.status is TaskStatus.FAILED
    assert "params is 5 KiB, over the 4 KiB limit" in (large_task.error_message or "")
    assert fine_task is not None and fine_task.status is TaskStatus.COMPLETE
