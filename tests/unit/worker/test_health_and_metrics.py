"""Worker observer events, the Prometheus metrics built from them, `/healthz` status codes, and the
task context that every log record about a task carries."""

from __future__ import annotations

import io
import json
import logging
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from headless_wan.domain.tasks import ClaimedTask, NewTask, Task
from headless_wan.errors import QueueUnavailable
from headless_wan.health_server import HealthServer
from headless_wan.logging import JsonFormatter, TaskContextFilter, task_scope
from headless_wan.metrics import Metrics
from headless_wan.queue.memory import InMemoryQueue
from headless_wan.storage.local import LocalStorage
from headless_wan.worker.dispatch import HandlerRegistry
from headless_wan.worker.health import HealthState, NullEvents, WorkerState
from headless_wan.worker.heartbeat import Heartbeat
from headless_wan.worker.loop import EXIT_FATAL, Worker, WorkerOptions
from headless_wan.worker.progress import ProgressEvent
from headless_wan.worker.terminal import TerminalProgress, render_line
from tests.fixtures.handlers import all_handlers

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


def claim(task_type: str = "vace", created_at: datetime | None = None) -> ClaimedTask:
    return ClaimedTask(Task("t-1", task_type, {}, created_at=created_at), "token")


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels or None)


class Recorder(NullEvents):
    def __init__(self) -> None:
        self.states: list[WorkerState] = []
        self.finished: list[tuple[str, str]] = []
        self.published: list[int] = []
        self.stages: list[str] = []
        self.retries: list[str] = []

    def state_changed(self, state: WorkerState) -> None:
        self.states.append(state)

    def task_finished(self, claim: ClaimedTask, outcome: str, duration_s: float) -> None:
        assert duration_s >= 0
        self.finished.append((claim.task_type, outcome))

    def progress(self, claim: ClaimedTask, event: ProgressEvent) -> None:
        self.stages.append(event.stage)

    def output_published(self, claim: ClaimedTask, size_bytes: int) -> None:
        self.published.append(size_bytes)

    def status_write_retried(self, what: str) -> None:
        self.retries.append(what)


def run_worker(queue: InMemoryQueue, tmp_path: Path, events: Recorder) -> int:
    opts = WorkerOptions(worker_id="w1", work_dir=tmp_path / "work", drain=True, poll_min_s=0.01)
    heartbeat = Heartbeat(queue, "w1", 5.0, logging.getLogger("test.heartbeat"))
    return Worker(queue, HandlerRegistry(all_handlers()), heartbeat, opts, events).run()  # type: ignore[arg-type]


def test_the_loop_reports_outcomes_states_progress_and_published_bytes(tmp_path: Path) -> None:
    queue = InMemoryQueue(LocalStorage(tmp_path / "out"), lease_s=30, max_attempts=3)
    queue.enqueue(NewTask("echo", {"message": "hello"}))
    queue.enqueue(NewTask("boom", {}))
    queue.enqueue(NewTask("fatal", {}))
    events = Recorder()
    assert run_worker(queue, tmp_path, events) == EXIT_FATAL
    assert events.finished == [("echo", "complete"), ("boom", "failed"), ("fatal", "released")]
    assert events.published == [len("hello")]
    assert "writing" in events.stages
    assert events.states[0] is WorkerState.READY and WorkerState.BUSY in events.states
    assert events.states[-1] is WorkerState.FAILED


def test_status_write_retries_are_reported(tmp_path: Path) -> None:
    queue = InMemoryQueue(LocalStorage(tmp_path / "out"), lease_s=30, max_attempts=3)
    queue.enqueue(NewTask("echo", {"message": "x"}))
    real_complete, calls = queue.complete, []

    def flaky_complete(*args: object) -> Task:
        calls.append(1)
        if len(calls) == 1:
            raise QueueUnavailable("database is locked")
        return real_complete(*args)  # type: ignore[arg-type]

    queue.complete = flaky_complete  # type: ignore[method-assign]
    events = Recorder()
    run_worker(queue, tmp_path, events)
    assert events.retries == ["flaky_complete"]
    assert events.finished == [("echo", "complete")]


def test_health_state_keeps_draining_and_failed() -> None:
    health = HealthState()
    assert health.state is WorkerState.STARTING
    for state in (WorkerState.READY, WorkerState.BUSY, WorkerState.DRAINING, WorkerState.READY):
        health.set(state)
    assert health.state is WorkerState.DRAINING
    health.set(WorkerState.FAILED)
    health.set(WorkerState.DRAINING)
    assert health.state is WorkerState.FAILED


def test_metrics_from_events() -> None:
    metrics = Metrics("w1", "sqlite", clock=lambda: NOW)
    task = claim("vace", created_at=NOW - timedelta(seconds=42))
    metrics.task_claimed(task)
    assert sample(metrics, "hw_queue_wait_seconds_sum", task_type="vace") == pytest.approx(42)
    events = [("loading_model", 0, 1, 10.0), ("loading_model", 1, 1, 25.0)]
    events += [("denoising", 1, 6, 26.0), ("denoising", 3, 6, 30.0), ("denoising", 6, 6, 33.0)]
    for seq, (stage, step, total, at) in enumerate(events):
        metrics.progress(task, ProgressEvent(seq, stage, step, total, "", at))
    assert sample(metrics, "hw_model_loads_total") == 1
    assert sample(metrics, "hw_model_load_seconds_sum") == pytest.approx(15)
    assert sample(metrics, "hw_step_duration_seconds_count", task_type="vace") == 5
    assert sample(metrics, "hw_step_duration_seconds_sum", task_type="vace") == pytest.approx(7)
    metrics.output_published(task, 1234)
    metrics.task_finished(task, "complete", 60.0)
    metrics.status_write_retried("complete")
    assert sample(metrics, "hw_upload_bytes_total", task_type="vace") == 1234
    assert sample(metrics, "hw_tasks_total", task_type="vace", outcome="complete") == 1
    assert sample(metrics, "hw_task_duration_seconds_count", task_type="vace", outcome="complete") == 1
    assert sample(metrics, "hw_status_write_retries_total", write="complete") == 1
    probe = metrics.observe_vram(lambda: (80_000, 20_000))
    assert probe() == (80_000, 20_000)
    assert sample(metrics, "hw_gpu_memory_used_bytes") == 20_000 * 2**20
    metrics.state_changed(WorkerState.BUSY)
    assert sample(metrics, "hw_worker_state", state="busy") == 1
    assert sample(metrics, "hw_worker_state", state="ready") == 0


def test_healthz_is_503_only_when_failed() -> None:
    metrics = Metrics("w1", "sqlite")
    server = HealthServer(metrics, "w1", "127.0.0.1", 0)
    port = server.start().port
    try:
        for state in (WorkerState.STARTING, WorkerState.READY, WorkerState.BUSY, WorkerState.DRAINING):
            metrics.state_changed(state)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
                assert reply.status == 200
                assert json.loads(reply.read()) == {"state": state.value, "worker_id": "w1"}
        metrics.state_changed(WorkerState.FAILED)
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert failed.value.code == 503
        assert json.loads(failed.value.read())["state"] == "failed"
    finally:
        server.stop()


def test_module_level_loggers_inside_a_task_carry_its_fields() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(TaskContextFilter())
    engine_log = logging.getLogger("headless_wan.engine.loading")
    engine_log.addHandler(handler)
    try:
        with task_scope(task_id="t-9", task_type="vace", worker_id="w1"):
            engine_log.warning("loading the transformer")
            engine_log.warning("resident", extra={"action": "model_loaded"})
        engine_log.warning("outside any task")
    finally:
        engine_log.removeHandler(handler)
    inside, explicit, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["task_id"] == "t-9" and inside["task_type"] == "vace" and inside["worker_id"] == "w1"
    assert inside["action"] == "engine.loading"
    assert explicit["action"] == "model_loaded" and explicit["task_id"] == "t-9"
    assert "task_id" not in outside and "action" not in outside


def test_terminal_progress_draws_one_line_per_stage() -> None:
    stream = io.StringIO()
    bar = TerminalProgress(stream)
    task = claim("vace")
    bar.progress(task, ProgressEvent(1, "denoising", 3, 6, "", 0.0))
    bar.progress(task, ProgressEvent(2, "denoising", 6, 6, "", 1.0))
    text = stream.getvalue()
    assert text.count("\n") == 1 and "\r" in text
    assert "[" + "#" * 30 + "] 6/6" in text
    assert render_line(task, ProgressEvent(1, "denoising", 3, 6, "", 0.0)).endswith("3/6")
