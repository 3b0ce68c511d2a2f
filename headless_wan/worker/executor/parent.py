"""The worker's side of the executor process: start it, hand it tasks, watch it, replace it.

The child is spawned (a fresh interpreter, never a fork) so it initialises CUDA itself and the
parent never imports torch. It stays up across tasks so the loaded model stays loaded; it is
killed and replaced only when a task stalls, times out or ignores a cancel, and replaced when it
dies. While a task runs, the parent's main thread waits on the pipe in short slices, so it
forwards a cancel within ~0.1 s and enforces the limits itself.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any

from headless_wan.domain.tasks import ClaimedTask, TaskResult
from headless_wan.errors import ConfigError, ExecutorLost, HeadlessWanError, TaskCancelled, WorkerFatal
from headless_wan.worker.executor.child import RegistryFactory, VramProbe, child_main
from headless_wan.worker.executor.messages import (
    Call,
    Cancel,
    Channel,
    FailureMsg,
    LogMsg,
    ProgressMsg,
    Ready,
    RemoteError,
    Reply,
    ResultMsg,
    RunTask,
    Shutdown,
    StartupFailed,
    pickle_error,
)
from headless_wan.worker.executor.watchdog import TaskWatch, WatchdogLimits
from headless_wan.worker.runner import RunRequest

logger = logging.getLogger("headless_wan.executor")
POLL_S = 0.1  # how often the wait on the pipe looks at the cancel token and the limits
LOST_MARK = "executor process"  # in every message about a lost executor, so a re-claim can tell


class Executor:
    """A `TaskRunner` that runs handlers in a child process built by `factory` (a picklable
    callable returning the HandlerRegistry: the composition root's, so plugins load there)."""

    supervised = True

    def __init__(
        self,
        factory: RegistryFactory,
        limits: WatchdogLimits,
        *,
        cancel_timeout_s: float = 15.0,
        start_timeout_s: float = 600.0,
        vram_probe: VramProbe | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`vram_probe` (picklable) runs in the child, where CUDA is; `vram_usage` reports its last figure."""
        self._factory = factory
        self._vram_probe = vram_probe
        self._vram: tuple[int, int] = (0, 0)
        self._limits = limits
        self._cancel_timeout_s = cancel_timeout_s
        self._start_timeout_s = start_timeout_s
        self._clock = clock
        self._mp = multiprocessing.get_context("spawn")
        self._proc: BaseProcess | None = None
        self._channel: Channel | None = None
        self._task_types: frozenset[str] = frozenset()
        self._lost: dict[str, int] = {}  # task id → executors lost running it (this worker)
        self.starts = 0
        self.last_overhead_s = 0.0  # the last task's wall time in run() minus its time in the handler

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def task_types(self) -> frozenset[str]:
        return self._task_types

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def vram_usage(self) -> tuple[int, int]:
        """(total_mb, used_mb) as the child last reported it: the heartbeat's VRAM probe."""
        return self._vram

    def start(self) -> None:
        """Spawn the child and wait until its handlers are built. `ConfigError` when it cannot
        build them (a broken plugin), `WorkerFatal` when it dies trying."""
        if self._proc is not None and self._proc.is_alive():
            return
        parent_conn, child_conn = self._mp.Pipe()
        level = logging.getLogger().getEffectiveLevel()
        proc = self._mp.Process(
            target=child_main,
            args=(child_conn, self._factory, level, os.getpid(), self._vram_probe),
            name="headless_wan-executor",
            daemon=True,
        )
        proc.start()
        child_conn.close()
        self._proc, self._channel = proc, Channel(parent_conn)
        self.starts += 1
        deadline = self._clock() + self._start_timeout_s
        while self._clock() < deadline:
            message = self._next(POLL_S)
            if isinstance(message, Ready):
                self._task_types = message.task_types
                logger.info("executor process %d ready", message.pid, extra={"action": "executor_ready"})
                return
            if isinstance(message, StartupFailed):
                self._reap()
                raise ConfigError(f"the executor process could not start: {message.message}")
            if isinstance(message, LogMsg):
                _relog(message)
            if message is _DEAD:
                raise WorkerFatal(f"the executor process died while starting ({self._death()})")
        self._kill()
        raise WorkerFatal(f"the executor process did not start within {self._start_timeout_s:g} s")

    def close(self) -> None:
        """Ask the child to exit; kill it if it does not within a few seconds."""
        if self._proc is None:
            return
        try:
            assert self._channel is not None
            self._channel.send(Shutdown())
        except OSError:
            pass
        self._proc.join(10)
        self._kill()

    # --- running a task --------------------------------------------------------------------

    def run(self, request: RunRequest) -> TaskResult:
        try:
            self.start()  # after a loss the next task gets a fresh process
        except ConfigError as exc:
            raise WorkerFatal(str(exc)) from None
        claim = request.claim
        began = time.perf_counter()
        watch = TaskWatch(self._clock(), self._limits.stall_s, self._limits.timeout_for(claim.task_type))
        if not self._send(RunTask(claim, request.workdir)):
            raise self._lost_error(claim, "died", f"Executor process died ({self._death()})")
        cancel_sent: float | None = None
        while True:
            now = self._clock()
            if request.cancel.cancelled:
                if cancel_sent is None:
                    self._send(Cancel(request.cancel.reason or "cancelled"))
                    cancel_sent = now
                elif now - cancel_sent > self._cancel_timeout_s:
                    self._kill()  # stuck in native code: only a kill frees the GPU
                    reason = request.cancel.reason or "cancelled"
                    raise TaskCancelled(f"Task cancelled ({reason}); executor process killed", reason=reason)
            if (expired := watch.expired(now)) is not None:
                self._kill()
                raise self._lost_error(claim, expired[0], f"{expired[1]}; executor process killed")
            message = self._next(POLL_S)
            if message is _DEAD:
                raise self._lost_error(claim, "died", f"Executor process died ({self._death()})")
            if message is not None and (done := self._handle(message, request, watch)) is not None:
                self.last_overhead_s = time.perf_counter() - began - done.run_s
                return done.result

    def _handle(self, message: object, request: RunRequest, watch: TaskWatch) -> ResultMsg | None:
        if isinstance(message, ProgressMsg):
            watch.touch(self._clock(), message)
            if message.vram_mb is not None:
                self._vram = message.vram_mb
            request.progress.report(message.stage, message.step, message.total, message.message)
        elif isinstance(message, LogMsg):
            _relog(message)
        elif isinstance(message, Call):
            self._serve_call(message, request)
        elif isinstance(message, ResultMsg):
            self._lost.pop(request.claim.id, None)
            return message
        elif isinstance(message, FailureMsg):
            raise self._failure(message)
        return None

    def _serve_call(self, call: Call, request: RunRequest) -> None:
        if call.name == "mark_started":
            request.mark_started(*call.args)
            return
        services: dict[str, Callable[..., Any]] = {
            "enqueue": lambda children: request.children.enqueue(list(children)),
            "existing": request.children.existing,
            "get": request.lookup.get,
            "completed_segments": request.lookup.completed_segments,
        }
        try:
            reply = Reply(call.call_id, value=services[call.name](*call.args))
        except Exception as exc:  # raised in the handler, as it would be in-process
            error = pickle_error(exc) or pickle.dumps(HeadlessWanError(f"{type(exc).__name__}: {exc}"))
            reply = Reply(call.call_id, error=error)
        self._send(reply)

    def _failure(self, failure: FailureMsg) -> BaseException:
        if failure.exit_code is not None or failure.type_name == "MemoryError":
            self._reap()  # the child exits after these; the next task gets a fresh one
        if failure.exit_code is not None:
            if failure.type_name == "KeyboardInterrupt":
                return KeyboardInterrupt()
            return SystemExit(failure.exit_code)
        exc: BaseException = (
            pickle.loads(failure.error) if failure.error else RemoteError(failure.type_name, failure.text)
        )
        exc.add_note(f"in the executor process:\n{failure.traceback}")
        return exc

    def _lost_error(self, claim: ClaimedTask, kind: str, message: str) -> ExecutorLost:
        """Died or stalled: released once, then failed. Timed out: failed (it would again)."""
        seen = self._lost.get(claim.id, 0) + 1
        self._lost[claim.id] = seen
        repeated = seen > 1 or LOST_MARK in (claim.task.error_message or "").lower()
        logger.error("%s", message, extra={"action": f"executor_{kind}", "task_id": claim.id})
        return ExecutorLost(message, kind=kind, repeated=repeated)

    # --- the pipe and the process ----------------------------------------------------------

    def _send(self, message: object) -> bool:
        try:
            assert self._channel is not None
            self._channel.send(message)
        except (OSError, ValueError):
            return False
        return True

    def _next(self, timeout_s: float) -> object:
        """The next message, None after `timeout_s`, or `_DEAD` when the child is gone."""
        channel, proc = self._channel, self._proc
        if channel is None or proc is None:
            return _DEAD
        try:
            if channel.poll(timeout_s):
                return channel.recv()
        except (EOFError, OSError):
            return _DEAD
        return None if proc.is_alive() else _DEAD

    def _death(self) -> str:
        """How the child ended, for the task's message; forgets the process."""
        proc = self._proc
        code = None
        if proc is not None:
            proc.join(5)
            code = proc.exitcode
        self._kill()
        if code is None:
            return "unknown cause"
        if code < 0:
            name = signal.Signals(-code).name
            hint = ": out of memory (the kernel's OOM killer) or killed" if name == "SIGKILL" else ""
            return f"killed by signal {name}{hint}"
        return f"exit code {code}"

    def _reap(self) -> None:
        if self._proc is not None:
            self._proc.join(10)
        self._kill()

    def _kill(self) -> None:
        proc, channel = self._proc, self._channel
        self._proc = self._channel = None
        if proc is not None:
            if proc.is_alive():
                proc.kill()
            proc.join(10)
        if channel is not None:
            channel.close()


_DEAD = object()


def _relog(message: LogMsg) -> None:
    """A child's record, logged here as if it were ours (the task context filter adds the task)."""
    record = logging.makeLogRecord(message.record)
    logging.getLogger(record.name).handle(record)
