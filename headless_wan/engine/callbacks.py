"""The one step callback: progress, cancellation and phase switches.

diffusers calls `callback_on_step_end(pipe, step_index, timestep, kwargs)` after every denoising
step. Ours:
1. records the step's duration;
2. checks for cancellation and raises `TaskCancelled` (raising aborts the pipeline at once;
   `pipe._interrupt` would still decode and return frames, which a cancelled task must not);
3. reports progress, throttled to one event per `min_interval_s`, but always the first and last step;
4. applies the plan of the next step: CFG on/off through `pipe._guidance_scale` (the pipeline
   decides per step from it whether to run the unconditional pass) and LoRA weights through
   `set_adapters` (both take effect on the next step). A compiled pipeline passes `apply_step`
   instead, which sets its residual adapters' scalings in place (engine/lora_fusion.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from headless_wan.engine.loras import AdapterState, set_adapter_weights
from headless_wan.engine.phases import DenoisePlan
from headless_wan.errors import TaskCancelled

ProgressFn = Callable[..., None]
"""`(stage, step, total, message="")`, the signature of the worker's `Progress.report`."""
CancelCheck = Callable[[], Any]
"""Raises `TaskCancelled` (like `CancelToken.check`) or returns True when the task is cancelled."""


def check_cancelled(cancel_check: CancelCheck | None) -> None:
    if cancel_check is not None and cancel_check():
        raise TaskCancelled("Task cancelled")


class StepCallback:
    def __init__(
        self,
        plan: DenoisePlan,
        adapters: AdapterState,
        *,
        on_progress: ProgressFn | None = None,
        cancel_check: CancelCheck | None = None,
        min_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        apply_step: Callable[[Any, int], None] | None = None,
    ) -> None:
        self._plan = plan
        self._adapters = adapters
        self._on_progress = on_progress
        self._cancel_check = cancel_check
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._last_report: float | None = None
        self._step_started = clock()
        self._weights: dict[str, float] | None = None
        self._apply_step = apply_step  # a compiled pipeline's in-place setter (engine/lora_fusion.py)
        self.step_durations_s: list[float] = []

    @property
    def total(self) -> int:
        return len(self._plan.steps)

    def start(self, pipe: Any) -> None:
        """Apply step one's adapter weights and start the step clock, right before the call."""
        self._apply_weights(pipe, 0)
        self._step_started = self._clock()

    def __call__(
        self, pipe: Any, step_index: int, timestep: Any, callback_kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        now = self._clock()
        self.step_durations_s.append(now - self._step_started)
        check_cancelled(self._cancel_check)
        self._report(step_index + 1, now)
        following = step_index + 1
        if following < self.total:
            # Whether the next step runs an unconditional pass; its CFG value comes from the
            # call's guidance_scale / guidance_scale_2 (see phases.py).
            pipe._guidance_scale = self._plan.steps[following].guidance
            self._apply_weights(pipe, following)
        self._step_started = self._clock()
        return callback_kwargs

    def _report(self, step: int, now: float) -> None:
        if self._on_progress is None:
            return
        due = self._last_report is None or now - self._last_report >= self._min_interval_s
        if due or step == self.total:
            self._last_report = now
            self._on_progress("denoising", step, self.total)
        if step == self.total:
            self._on_progress("decoding", 0, 1)  # the VAE decode follows the last step

    def _apply_weights(self, pipe: Any, step: int) -> None:
        if self._apply_step is not None:
            self._apply_step(pipe, step)
            return
        names: Sequence[str] = self._plan.lora_names
        weights = dict(zip(names, self._plan.steps[step].lora_weights, strict=True))
        if weights != self._weights:
            set_adapter_weights(pipe, self._adapters, weights)
            self._weights = weights
