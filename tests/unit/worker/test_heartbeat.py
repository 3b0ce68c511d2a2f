"""What the worker reports about itself: alive before the first claim, logs, model, last status."""

from __future__ import annotations

import logging
from pathlib import Path

from headless_wan.domain.tasks import NewTask, TaskStatus
from headless_wan.domain.workers import WorkerBeat, WorkerStatus
from headless_wan.queue.memory import InMemoryQueue
from headless_wan.storage.local import LocalStorage
from headless_wan.worker.dispatch import HandlerRegistry
from headless_wan.worker.heartbeat import Heartbeat
from headless_wan.worker.log_buffer import LogBuffer
from headless_wan.worker.loop import Worker, WorkerOptions
from tests.fixtures.handlers import all_handlers


class RecordingQueue(InMemoryQueue):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.beats: list[WorkerBeat] = []
        self.model_calls: list[str] = []
        self.claims_before_first_beat = 0

    def worker_alive(self, beat: WorkerBeat) -> None:
        self.beats.append(beat)
        super().worker_alive(beat)

    def claim(self, worker_id, task_types=None):  # type: ignore[no-untyped-def]
        if not self.beats:
            self.claims_before_first_beat += 1
        return super().claim(worker_id, task_types)

    def set_model(self, worker_id: str, model: str) -> None:
        self.model_calls.append(model)
        super().set_model(worker_id, model)


def run_worker(queue: RecordingQueue, tmp_path: Path, buffer: LogBuffer) -> int:
    logger = logging.getLogger("headless_wan")
    logger.addHandler(buffer)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        heartbeat = Heartbeat(
            queue, "w1", 3600, logging.getLogger("t"), vram_probe=lambda: (81920, 1024), log_buffer=buffer
        )
        options = WorkerOptions(worker_id="w1", work_dir=tmp_path / "work", drain=True)
        return Worker(queue, HandlerRegistry(all_handlers()), heartbeat, options).run()  # type: ignore[arg-type]
    finally:
        logger.removeHandler(buffer)
        logger.setLevel(old_level)


def test_worker_reports_alive_before_claiming_and_inactive_when_done(tmp_path: Path) -> None:
    queue = RecordingQueue(LocalStorage(tmp_path / "out"))
    task_id = queue.enqueue(NewTask("echo", {"message": "hi"}))
    run_worker(queue, tmp_path, LogBuffer())
    assert queue.claims_before_first_beat == 0
    assert queue.beats[0].status is WorkerStatus.ACTIVE
    assert (queue.beats[0].vram_total_mb, queue.beats[0].vram_used_mb) == (81920, 1024)
    assert queue.beats[-1].status is WorkerStatus.INACTIVE
    assert queue.get(task_id).status is TaskStatus.COMPLETE  # type: ignore[union-attr]
    shipped = [entry for beat in queue.beats for entry in beat.logs]
    assert any(entry.task_id == task_id and "complete" in entry.message for entry in shipped)


def test_log_buffer_is_bounded_and_ships_at_most_100_per_beat() -> None:
    buffer = LogBuffer(capacity=150)
    log = logging.getLogger("headless_wan.test_buffer")
    log.addHandler(buffer)
    log.setLevel(logging.INFO)
    try:
        for n in range(200):
            log.info("line %d", n, extra={"task_id": "t1"})
    finally:
        log.removeHandler(buffer)
    first = buffer.drain()
    assert len(first) == 100 and first[0].message.endswith("line 50") and first[0].task_id == "t1"
    assert len(buffer.drain()) == 50 and buffer.dropped == 50
    assert buffer.drain() == ()


def test_model_is_reported_once_per_switch(tmp_path: Path) -> None:
    queue = RecordingQueue(LocalStorage(tmp_path / "out"))
    for model in ("vace_14B", "vace_14B", None, "vace_1.3B"):
        queue.enqueue(NewTask("echo", {"message": "m", "model": model}))
    run_worker(queue, tmp_path, LogBuffer())
    assert queue.model_calls == ["vace_14B", "vace_1.3B"]
    assert queue.models == {"w1": "vace_1.3B"}
