"""The worker loop: claim → validate → dispatch → publish → complete, one task at a time.

It talks to the queue only through `QueueClient`, to handlers only through `Handler`.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from headless_wan.domain.tasks import ClaimedTask, TaskResult
from headless_wan.domain.workers import WorkerStatus
from headless_wan.errors import ClaimLost, HeadlessWanError, TransientError
from headless_wan.handlers.base import CancelToken
from headless_wan.logging import ContextAdapter, task_scope
from headless_wan.queue.base import QueueClient
from headless_wan.worker.context import QueueChildTasks
from headless_wan.worker.dispatch import HandlerRegistry
from headless_wan.worker.finishing import Finisher, read_manifest, write_manifest
from headless_wan.worker.health import NullEvents, WorkerEvents, WorkerState
from headless_wan.worker.heartbeat import Heartbeat
from headless_wan.worker.progress import ProgressReporter
from headless_wan.worker.retry import Action, decide
from headless_wan.worker.runner import InProcessRunner, RunRequest, TaskRunner

EXIT_OK = 0
EXIT_FATAL = 70

logger = logging.getLogger("headless_wan.worker")
F = TypeVar("F", bound=Callable[..., Any])
_OUTCOMES = {
    "fail": "failed",
    "release": "released",
    "drop": "dropped",
    "fatal": "released",
    "stop": "released",
}


@dataclass(frozen=True)
class WorkerOptions:
    worker_id: str
    work_dir: Path
    task_types: frozenset[str] | None = None
    drain: bool = False
    poll_min_s: float = 0.5
    poll_max_s: float = 10.0
    shutdown_grace_s: float = 30.0
    cancel_timeout_s: float = 15.0
    progress_interval_s: float = 2.0
    keep_failed_workdirs: bool = False
    finish_budget_s: float = 300.0
    """Total time publishing and the final status write may take, retries included."""


@dataclass
class _Current:
    claim: ClaimedTask
    cancel: CancelToken
    done: threading.Event


class Worker:
    def __init__(
        self,
        queue: QueueClient,
        runner: TaskRunner | HandlerRegistry,
        heartbeat: Heartbeat,
        options: WorkerOptions,
        events: WorkerEvents | None = None,
    ) -> None:
        """`runner`: the executor process, or a registry whose handlers run in this process."""
        self.queue = queue
        self.runner: TaskRunner = InProcessRunner(runner) if isinstance(runner, HandlerRegistry) else runner
        self.heartbeat = heartbeat
        self.options = options
        self.events: WorkerEvents = events or NullEvents()
        self.exit_code = EXIT_OK
        self._stop = threading.Event()
        self._wake = threading.Event()  # ends a queue's own idle wait (wait_for_work) on a stop request
        self._stop_requests = 0
        self._current: _Current | None = None
        self._queue_down = False
        self._loaded_model: str | None = None
        self.finisher = Finisher(
            queue, self.events, options.worker_id, options.finish_budget_s, on_error=self._handle_error
        )
        self._log = ContextAdapter(logger, {"worker_id": options.worker_id})

    # --- control ---------------------------------------------------------------------------

    def request_stop(self, signum: int | None = None) -> None:
        """Stop claiming. A running task may finish within the grace period; a second request
        cancels it at once. Safe to call from a signal handler."""
        self._stop_requests += 1
        self._stop.set()
        self._wake.set()
        self.events.state_changed(WorkerState.DRAINING)
        self._log.info("stop requested (%d)", self._stop_requests, extra={"action": "stop_requested"})
        current = self._current
        if current is not None:
            self._guard_shutdown(current)

    def _guard_shutdown(self, current: _Current) -> None:
        """The first stop request gives the running task the full grace period; a later one cancels
        it at once. Called for a task that was claimed while the stop arrived, too, without counting
        that stop again."""
        grace = 0.0 if self._stop_requests > 1 else self.options.shutdown_grace_s
        threading.Thread(target=self._enforce_shutdown, args=(current, grace), daemon=True).start()

    @property
    def current_task_id(self) -> str | None:
        current = self._current
        return current.claim.id if current else None

    def run(self) -> int:
        """Serve until stopped. Closes what it opened (queue, heartbeat client, runner) on the way out;
        a handler's SystemExit / KeyboardInterrupt stops it after the task is released."""
        try:
            self.queue.open()
            self.heartbeat.start()
        except BaseException:
            self._close()
            raise
        self._log.info("worker started", extra={"action": "worker_started"})
        try:
            for task_id in self.queue.recover(self.options.worker_id):
                self._log.warning(
                    "released task %s held since before a restart",
                    task_id,
                    extra={"action": "task_recovered", "task_id": task_id},
                )
            self.events.state_changed(WorkerState.READY)
            self._serve()
        except BaseException:
            self.events.state_changed(WorkerState.FAILED)
            raise
        finally:
            if self.exit_code == EXIT_FATAL:
                self.events.state_changed(WorkerState.FAILED)
            # A worker-fatal exit says "crashed", so a queue that can gives back whatever
            # this worker still held; a clean stop says "inactive".
            self.heartbeat.stop(
                WorkerStatus.CRASHED if self.exit_code == EXIT_FATAL else WorkerStatus.INACTIVE
            )
            self._close()
            self._log.info("worker stopped", extra={"action": "worker_stopped"})
        return self.exit_code

    def _close(self) -> None:
        for close in (self.runner.close, self.queue.close):
            try:
                close()
            except Exception as exc:  # shutting down: report, and close the rest
                self._log.warning("close failed: %s", exc, extra={"action": "close_failed"})

    # --- the loop --------------------------------------------------------------------------

    def _serve(self) -> None:
        delay = self.options.poll_min_s
        while not self._stop.is_set():
            self.finisher.retry_deferred()
            claim = self._try_claim()
            if claim is None:
                if self.options.drain and not self._queue_down:
                    return
                self._idle(delay)
                delay = next_idle_delay(delay, self.options.poll_max_s)
                continue
            delay = self.options.poll_min_s
            if not self._process(claim):
                return

    def _idle(self, delay_s: float) -> None:
        """Wait before the next claim: on an event, not a sleep, so a stop request wakes us at once.
        A queue with its own wake-up (PostgreSQL LISTEN/NOTIFY) ends the wait early when work arrives."""
        wait_for_work = getattr(self.queue, "wait_for_work", None)
        if wait_for_work is None:
            self._stop.wait(delay_s)
            return
        self._wake.clear()
        if not self._stop.is_set():  # checked after the clear: a stop in between still sets _wake
            wait_for_work(delay_s, self._wake)

    def _try_claim(self) -> ClaimedTask | None:
        try:
            claim = self.queue.claim(self.options.worker_id, self.options.task_types)
        except TransientError as exc:
            self._queue_down = True
            self._log.warning("claim failed: %s", exc, extra={"action": "claim_failed"})
            return None
        self._queue_down = False
        return claim

    def _process(self, claim: ClaimedTask) -> bool:
        """Run one claimed task to a final state. Returns False when the worker must stop."""
        log = ContextAdapter(
            logger,
            {"worker_id": self.options.worker_id, "task_id": claim.id, "task_type": claim.task_type},
        )
        log.info("claimed %s task %s: In Progress", claim.task_type, claim.id, extra={"action": "claim_task"})
        self.events.state_changed(WorkerState.BUSY)
        self.events.task_claimed(claim)
        with task_scope(task_id=claim.id, task_type=claim.task_type, worker_id=self.options.worker_id):
            return self._process_claimed(claim, log)

    def _process_claimed(self, claim: ClaimedTask, log: ContextAdapter) -> bool:
        cancel = CancelToken()
        progress = ProgressReporter(
            log, self.options.progress_interval_s, on_event=lambda event: self.events.progress(claim, event)
        )
        workdir = self.options.work_dir / _safe_dirname(claim.id)
        current = _Current(claim, cancel, threading.Event())
        self._current = current
        self.heartbeat.watch(claim, cancel)
        if self._stop.is_set():  # a stop arrived between the claim and now: the same stop, same grace
            self._guard_shutdown(current)
        started = time.monotonic()
        try:
            result = self._result_of(claim, cancel, progress, workdir, log)
        except Exception as exc:
            progress.close()
            return self._handle_error(claim, exc, workdir, log, started)
        except BaseException as exc:  # SystemExit, Ctrl-C: not the task's fault; stop the worker
            progress.close()
            self._handle_error(claim, exc, workdir, log, started)
            raise
        else:
            progress.close()
            self.finisher.finish(claim, result, workdir, log, started)
            return True
        finally:
            self.heartbeat.unwatch()
            self._current = None
            current.done.set()
            self.events.state_changed(WorkerState.DRAINING if self._stop.is_set() else WorkerState.READY)

    def _result_of(
        self,
        claim: ClaimedTask,
        cancel: CancelToken,
        progress: ProgressReporter,
        workdir: Path,
        log: logging.LoggerAdapter[logging.Logger],
    ) -> TaskResult:
        """The manifest of an earlier run whose completion was never recorded, else a fresh run;
        either way the result is in the manifest before anything is published."""
        earlier = read_manifest(workdir, claim.id)
        if earlier is not None:
            log.info("finishing from an earlier run's manifest", extra={"action": "task_from_manifest"})
            return earlier
        workdir.mkdir(parents=True, exist_ok=True)
        request = RunRequest(
            claim=claim,
            workdir=workdir,
            cancel=cancel,
            progress=progress,
            children=QueueChildTasks(self.queue, claim),
            lookup=self.queue,
            mark_started=lambda model=None: self._mark_started(claim, log, model),
            log=log,
        )
        log.info("running", extra={"action": "task_started"})
        result = self.runner.run(request)
        write_manifest(workdir, claim.id, result)
        return result

    def _mark_started(self, claim: ClaimedTask, log: ContextAdapter, model: str | None) -> None:
        """After model load: start billing, and record the loaded model once per switch."""
        try:
            self.queue.mark_started(claim)
            if model and model != self._loaded_model:
                self.queue.set_model(self.options.worker_id, model)
                self._loaded_model = model
        except TransientError as exc:  # best effort; the task goes on
            log.warning("could not mark task started: %s", exc, extra={"action": "mark_started_failed"})

    def _handle_error(
        self,
        claim: ClaimedTask,
        exc: BaseException,
        workdir: Path,
        log: logging.LoggerAdapter[logging.Logger],
        started: float,
    ) -> bool:
        decision = decide(exc, claim.task_type)
        detailed = decision.action is Action.FATAL or not isinstance(exc, Exception) or _is_unexpected(exc)
        log.log(
            logging.ERROR if decision.action in (Action.FAIL, Action.FATAL) else logging.WARNING,
            "%s: %s",
            decision.action.value,
            decision.message,
            exc_info=exc if detailed else None,
            extra={"action": f"task_{decision.action.value}"},
        )
        try:
            if decision.action is Action.FAIL:
                self._persist(self.queue.fail)(claim, decision.message)
            elif decision.action in (Action.RELEASE, Action.FATAL, Action.STOP):
                self._persist(self.queue.release)(claim, decision.message)
        except ClaimLost as gone:
            # Finished elsewhere meanwhile (cancelled, requeued, cascaded): nothing to record.
            log.info("outcome not recorded: %s", gone, extra={"action": "claim_lost"})
        except Exception as write_exc:
            log.error("could not record the outcome: %s", write_exc, extra={"action": "status_write_failed"})
        if decision.action is not Action.FAIL or not self.options.keep_failed_workdirs:
            shutil.rmtree(workdir, ignore_errors=True)
        self.events.task_finished(claim, _OUTCOMES[decision.action.value], time.monotonic() - started)
        if decision.action is Action.STOP:
            self._stop.set()
            return False
        if decision.action is Action.FATAL:
            self.exit_code = EXIT_FATAL
            return False
        return True

    def _persist(self, write: F) -> F:
        return self.finisher.persist(write)

    def _enforce_shutdown(self, current: _Current, grace_s: float) -> None:
        """Give the running task `grace_s` to finish, then cancel it; if it ignores the cancel,
        release it with the heartbeat's own client and exit (the main thread may be stuck)."""
        if current.done.wait(grace_s):
            return
        self._log.warning("grace period over; cancelling", extra={"action": "shutdown_cancel"})
        current.cancel.cancel("shutdown")
        # A supervised runner kills a task that ignores the cancel itself, after cancel_timeout_s;
        # this guard then only covers a main thread that is stuck anyway.
        patience = self.options.cancel_timeout_s * (2 if self.runner.supervised else 1)
        if current.done.wait(patience + (5 if self.runner.supervised else 0)):
            return
        self._log.error(
            "task ignored cancellation; releasing and exiting", extra={"action": "shutdown_forced"}
        )
        try:
            self.heartbeat.queue.release(current.claim, "worker shut down before the task finished")
        finally:
            logging.shutdown()
            os._exit(EXIT_OK)


def next_idle_delay(delay_s: float, max_s: float) -> float:
    """Idle polling doubles its wait after each empty claim, up to `max_s`."""
    return min(delay_s * 2, max_s)


_UNSAFE_DIR = re.compile(r"[^A-Za-z0-9._-]+")


def _safe_dirname(task_id: str) -> str:
    return _UNSAFE_DIR.sub("_", task_id).strip("._") or "task"


def _is_unexpected(exc: BaseException) -> bool:
    return not isinstance(exc, HeadlessWanError)
