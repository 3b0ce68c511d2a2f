"""Prometheus metrics for one worker process: a `WorkerEvents` observer over its own registry.

Imported only when a metrics port is set (prometheus_client stays off the `--help` and queue
paths). A dedicated `CollectorRegistry` rather than the global one keeps tests isolated and the
exposition free of anything a library registers globally.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from headless_wan import __version__
from headless_wan.domain.tasks import ClaimedTask
from headless_wan.worker.health import HealthState, WorkerState
from headless_wan.worker.progress import ProgressEvent

TASK_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 2400, 3600)
STEP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)
WAIT_BUCKETS = (0.1, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600)
LOAD_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600)
DENOISING = "denoising"
LOADING = "loading_model"


class _StateCollector(Collector):
    """`hw_worker_state{state}`: 1 for the current state. Read at scrape time, so state changes
    (one from a signal handler) never touch a prometheus lock."""

    def __init__(self, health: HealthState) -> None:
        self._health = health

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("hw_worker_state", "Current worker state (1 = current).", labels=["state"])
        current = self._health.state
        for state in WorkerState:
            family.add_metric([state.value], 1.0 if state is current else 0.0)
        yield family


class Metrics:
    """Implements `WorkerEvents`; also the health state `/healthz` reports."""

    def __init__(self, worker_id: str, queue: str, clock: Callable[[], datetime] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.health = HealthState()
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._lock = threading.Lock()
        self._last_step: dict[str, tuple[int, float]] = {}  # task id → (step, at) of the last denoising event
        self._load_started: dict[str, float] = {}
        r = self.registry
        Gauge("hw_worker_info", "Worker identity.", ["worker_id", "queue", "version"], registry=r).labels(
            worker_id, queue, __version__
        ).set(1)
        r.register(_StateCollector(self.health))
        self.tasks = Counter("hw_tasks", "Tasks finished, by outcome.", ["task_type", "outcome"], registry=r)
        self.task_seconds = Histogram(
            "hw_task_duration_seconds", "Claim to final status.", ["task_type", "outcome"],
            buckets=TASK_BUCKETS, registry=r,
        )  # fmt: skip
        self.step_seconds = Histogram(
            "hw_step_duration_seconds",
            "Denoising step time.",
            ["task_type"],
            buckets=STEP_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "hw_queue_wait_seconds",
            "Task creation to claim.",
            ["task_type"],
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.model_loads = Counter("hw_model_loads", "Model (pipeline) loads.", registry=r)
        self.model_load_seconds = Histogram(
            "hw_model_load_seconds", "Model (pipeline) load time.", buckets=LOAD_BUCKETS, registry=r
        )
        self.gpu_total = Gauge("hw_gpu_memory_total_bytes", "GPU memory of the device.", registry=r)
        self.gpu_used = Gauge("hw_gpu_memory_used_bytes", "GPU memory in use (heartbeat probe).", registry=r)
        self.upload_bytes = Counter(
            "hw_upload_bytes", "Bytes of outputs published (file sizes).", ["task_type"], registry=r
        )
        self.retries = Counter(
            "hw_status_write_retries", "Retried final status writes.", ["write"], registry=r
        )

    # --- WorkerEvents ---------------------------------------------------------------------------

    def state_changed(self, state: WorkerState) -> None:
        self.health.set(state)

    def task_claimed(self, claim: ClaimedTask) -> None:
        created = claim.task.created_at
        if created is not None:
            wait = (self._clock() - _aware(created)).total_seconds()
            self.queue_wait.labels(claim.task_type).observe(max(wait, 0.0))

    def task_finished(self, claim: ClaimedTask, outcome: str, duration_s: float) -> None:
        self.tasks.labels(claim.task_type, outcome).inc()
        self.task_seconds.labels(claim.task_type, outcome).observe(duration_s)
        with self._lock:
            self._last_step.pop(claim.id, None)
            self._load_started.pop(claim.id, None)

    def progress(self, claim: ClaimedTask, event: ProgressEvent) -> None:
        if event.stage == LOADING:
            self._model_load(claim.id, event)
        elif event.stage == DENOISING:
            self._step(claim, event)

    def output_published(self, claim: ClaimedTask, size_bytes: int) -> None:
        self.upload_bytes.labels(claim.task_type).inc(size_bytes)

    def status_write_retried(self, what: str) -> None:
        self.retries.labels(what).inc()

    # --- other observations ---------------------------------------------------------------------

    def observe_vram(self, probe: Callable[[], tuple[int, int]]) -> Callable[[], tuple[int, int]]:
        """Wrap the heartbeat's VRAM probe so every beat also updates the GPU memory gauges."""

        def probed() -> tuple[int, int]:
            total_mb, used_mb = probe()
            self.gpu_total.set(total_mb * 2**20)
            self.gpu_used.set(used_mb * 2**20)
            return total_mb, used_mb

        return probed

    # --- internals ------------------------------------------------------------------------------

    def _model_load(self, task_id: str, event: ProgressEvent) -> None:
        # The engine reports loading_model 0/1 before a cold load and 1/1 after it.
        with self._lock:
            if event.step < event.total:
                self._load_started[task_id] = event.at
                return
            began = self._load_started.pop(task_id, None)
        if began is not None:
            self.model_loads.inc()
            self.model_load_seconds.observe(max(event.at - began, 0.0))

    def _step(self, claim: ClaimedTask, event: ProgressEvent) -> None:
        # Progress may be throttled upstream: spread the elapsed time over the steps it covers.
        with self._lock:
            last = self._last_step.get(claim.id)
            self._last_step[claim.id] = (event.step, event.at)
        if last is None or event.step <= last[0]:
            return
        per_step = (event.at - last[1]) / (event.step - last[0])
        for _ in range(event.step - last[0]):
            self.step_seconds.labels(claim.task_type).observe(max(per_step, 0.0))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
