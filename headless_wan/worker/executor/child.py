"""The executor process: builds the handlers (and with them the engine) once, then runs one task
at a time for the worker, kept warm so a loaded model stays loaded.

It never touches the queue: the handler's queue services (`ctx.children`, `ctx.lookup`,
`ctx.mark_started`) are calls answered by the parent, and progress and log records travel to the
parent, which owns the queue, the heartbeat and the watchdog. SIGINT/SIGTERM are ignored here: the
parent decides when this process stops (a `Shutdown` message, or SIGKILL), and on Linux the kernel
kills it if the parent dies (PR_SET_PDEATHSIG), so a killed worker never leaves a GPU holder behind.
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import os
import pickle
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from headless_wan.domain.tasks import NewTask, SegmentOutput, Task
from headless_wan.handlers.base import CancelToken, TaskContext
from headless_wan.logging import ContextAdapter
from headless_wan.worker.dispatch import HandlerRegistry
from headless_wan.worker.executor.messages import (
    Call,
    Cancel,
    Channel,
    FailureMsg,
    LogMsg,
    ProgressMsg,
    Ready,
    Reply,
    ResultMsg,
    RunTask,
    Shutdown,
    StartupFailed,
    pickle_error,
)

RegistryFactory = Callable[[], HandlerRegistry]
VramProbe = Callable[[], tuple[int, int]]
VRAM_EVERY_S = 1.0
logger = logging.getLogger("headless_wan.executor")
_PR_SET_PDEATHSIG = 1
_PLAIN = (str, int, float, bool, type(None))
# Exceptions the parent rebuilds as themselves; others (a plugin's, torch's) travel by name, so
# unpickling never imports a heavy module into the parent.
_PORTABLE = ("builtins", "headless_wan.errors")


def child_main(
    conn: Any, factory: RegistryFactory, log_level: int, parent_pid: int, vram_probe: VramProbe | None = None
) -> None:
    """Entry point of the spawned process."""
    _die_with_parent(parent_pid)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    channel = Channel(conn)
    _forward_logs(channel, log_level)
    try:
        registry = factory()
    except BaseException as exc:  # a broken plugin or setting: the parent reports it and exits
        channel.send(StartupFailed(f"{type(exc).__name__}: {exc}"))
        return
    channel.send(Ready(registry.task_types, os.getpid()))
    _ChildServer(channel, registry, vram_probe).serve()


class _ChildServer:
    def __init__(self, channel: Channel, registry: HandlerRegistry, vram_probe: VramProbe | None) -> None:
        self._channel = channel
        self._registry = registry
        self._vram_probe = vram_probe
        self._inbox: queue.Queue[tuple[RunTask, CancelToken] | None] = queue.Queue()
        self._cancel: CancelToken | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[threading.Event, list[Reply]]] = {}
        self._lock = threading.Lock()

    def serve(self) -> None:
        threading.Thread(target=self._read, name="executor-reader", daemon=True).start()
        while (next_run := self._inbox.get()) is not None:
            if not self._run(*next_run):
                return

    def _read(self) -> None:
        """Everything the parent sends; a closed pipe means the parent is gone: exit at once."""
        while True:
            try:
                message = self._channel.recv()
            except (EOFError, OSError):
                os._exit(0)
            if isinstance(message, RunTask):
                # The token exists before the handler starts, so a Cancel sent right after is not lost.
                self._cancel = CancelToken()
                self._inbox.put((message, self._cancel))
            elif isinstance(message, Cancel) and self._cancel is not None:
                self._cancel.cancel(message.reason)
            elif isinstance(message, Reply):
                self._answer(message)
            elif isinstance(message, Shutdown):
                self._inbox.put(None)
                return

    def _run(self, run: RunTask, cancel: CancelToken) -> bool:
        """One task; False when the handler asked the process to exit (SystemExit, Ctrl-C)."""
        claim = run.claim
        log = ContextAdapter(logger, {"task_id": claim.id, "task_type": claim.task_type})
        ctx = TaskContext(
            task=claim.task,
            workdir=run.workdir,
            cancel=cancel,
            progress=_RemoteProgress(self._channel, self._vram_probe),
            children=_RemoteChildren(self, claim),
            mark_started=lambda model=None: self._channel.send(Call(0, "mark_started", (model,))),
            log=log,
            lookup=_RemoteLookup(self),
        )
        began = time.perf_counter()
        try:
            handler, params = self._registry.resolve(claim.task)
            result = handler.run(ctx, params)
            cancel.check()  # cancelled while finishing up: publish nothing
        except (SystemExit, KeyboardInterrupt) as exc:
            self._channel.send(_failure(exc, exit_code=_exit_code(exc)))
            return False
        except BaseException as exc:
            self._channel.send(_failure(exc))
            return not isinstance(exc, MemoryError)  # host memory gone: a fresh process is safer
        else:
            self._channel.send(ResultMsg(result, time.perf_counter() - began))
        return True

    def call(self, name: str, *args: Any) -> Any:
        call_id = next(self._ids)
        done, box = threading.Event(), []
        with self._lock:
            self._pending[call_id] = (done, box)
        self._channel.send(Call(call_id, name, args))
        done.wait()  # the reader exits the process if the parent goes away
        reply = box[0]
        if reply.error is not None:
            raise pickle.loads(reply.error)
        return reply.value

    def _answer(self, reply: Reply) -> None:
        with self._lock:
            slot = self._pending.pop(reply.call_id, None)
        if slot is not None:
            slot[1].append(reply)
            slot[0].set()


class _RemoteProgress:
    """Progress events to the parent, with the VRAM figures now and then (CUDA lives here only)."""

    def __init__(self, channel: Channel, vram_probe: VramProbe | None) -> None:
        self._channel = channel
        self._vram_probe = vram_probe
        self._vram_at = float("-inf")

    def report(self, stage: str, step: int, total: int, message: str = "") -> None:
        vram = None
        now = time.monotonic()
        if self._vram_probe is not None and now - self._vram_at >= VRAM_EVERY_S:
            self._vram_at = now
            try:
                vram = self._vram_probe()
            except Exception:  # a figure for a dashboard; never worth failing the task over
                vram = None
        self._channel.send(ProgressMsg(stage, step, total, message, vram))


class _RemoteChildren:
    def __init__(self, server: _ChildServer, claim: Any) -> None:
        self._server = server
        self._claim = claim  # as the in-process QueueChildTasks holds it (test fixtures peek)

    def enqueue(self, children: Sequence[NewTask]) -> list[str]:
        return list(self._server.call("enqueue", tuple(children)))

    def existing(self) -> list[Task]:
        return list(self._server.call("existing"))


class _RemoteLookup:
    def __init__(self, server: _ChildServer) -> None:
        self._server = server

    def get(self, task_id: str) -> Task | None:
        result: Task | None = self._server.call("get", task_id)
        return result

    def completed_segments(self, run_id: str, project_id: str | None = None) -> list[SegmentOutput]:
        return list(self._server.call("completed_segments", run_id, project_id))


class _LogForwarder(logging.Handler):
    """Sends each record to the parent, which logs it as its own (with the task's context)."""

    def __init__(self, channel: Channel) -> None:
        super().__init__()
        self._channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = {k: v for k, v in record.__dict__.items() if isinstance(v, _PLAIN)}
            fields["msg"], fields["args"] = record.getMessage(), None
            if record.exc_info:
                fields["exc_text"] = logging.Formatter().formatException(record.exc_info)
            self._channel.send(LogMsg(fields))
        except Exception:
            self.handleError(record)


def _forward_logs(channel: Channel, level: int) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_LogForwarder(channel))
    root.setLevel(level)


def _failure(exc: BaseException, exit_code: int | None = None) -> FailureMsg:
    return FailureMsg(
        type_name=type(exc).__name__,
        text=str(exc),
        traceback="".join(traceback.format_exception(exc)),
        error=pickle_error(exc) if type(exc).__module__ in _PORTABLE else None,
        exit_code=exit_code,
    )


def _exit_code(exc: BaseException) -> int:
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else 1
    return 130  # Ctrl-C, as a shell reports it


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when the parent dies (elsewhere: the closed pipe does it,
    once the handler returns)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(0)
