"""The step callback with a fake pipeline and clock: throttling, cancel, CFG and LoRA switches."""

from __future__ import annotations

import pytest

from headless_wan.engine.callbacks import StepCallback
from headless_wan.engine.loras import AdapterState
from headless_wan.engine.phases import build_plan, schedule_from_phases
from headless_wan.errors import TaskCancelled


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Pipe:
    def __init__(self) -> None:
        self._guidance_scale = 3.0
        self.adapter_calls: list[tuple] = []

    def set_adapters(self, names, adapter_weights) -> None:
        self.adapter_calls.append((tuple(names), tuple(w["transformer"] for w in adapter_weights)))

    def enable_lora(self) -> None:
        pass

    def disable_lora(self) -> None:
        self.adapter_calls.append(((), ()))


def make(steps=(2, 2, 2), guidance=(3.0, 1.0, 1.0), loras=(), **kwargs):
    plan = build_plan(schedule_from_phases(steps, guidance, None, False), list(loras), two_experts=False)
    state = AdapterState(loaded={name: frozenset({"transformer"}) for name, _ in loras})
    return StepCallback(plan, state, **kwargs)


def run_steps(callback: StepCallback, pipe: Pipe, clock: Clock, step_s: float = 0.4) -> None:
    callback.start(pipe)
    for index in range(callback.total):
        clock.now += step_s
        callback(pipe, index, 0, {})


def test_progress_is_throttled_but_keeps_first_and_last() -> None:
    events: list[tuple] = []
    clock = Clock()
    callback = make(on_progress=lambda *e: events.append(e), min_interval_s=1.0, clock=clock)
    run_steps(callback, Pipe(), clock)
    # steps end at 0.4, 0.8, 1.2, 1.6, 2.0, 2.4 s: reported at 0.4 (first), 1.6 (+1.2 s), 2.4 (last)
    assert events == [("denoising", 1, 6), ("denoising", 4, 6), ("denoising", 6, 6), ("decoding", 0, 1)]
    assert callback.step_durations_s == pytest.approx([0.4] * 6)


def test_cancel_raises_within_the_step() -> None:
    clock, pipe = Clock(), Pipe()
    seen: list[int] = []

    def cancel_check() -> bool:
        return len(seen) >= 2

    callback = make(on_progress=lambda stage, step, total: seen.append(step), cancel_check=cancel_check,
                    min_interval_s=0.0, clock=clock)  # fmt: skip
    callback.start(pipe)
    callback(pipe, 0, 0, {})
    callback(pipe, 1, 0, {})
    with pytest.raises(TaskCancelled):
        callback(pipe, 2, 0, {})
    assert seen == [1, 2]


def test_cfg_is_switched_off_for_the_steps_that_have_none() -> None:
    clock, pipe = Clock(), Pipe()
    callback = make(clock=clock)
    callback.start(pipe)
    observed = []
    for index in range(callback.total):
        observed.append(pipe._guidance_scale)  # what step `index` runs with
        callback(pipe, index, 0, {})
    assert observed == [3.0, 3.0, 1.0, 1.0, 1.0, 1.0]


def test_lora_weights_change_only_at_boundaries() -> None:
    clock, pipe = Clock(), Pipe()
    callback = make(steps=(3,), guidance=(1.0,), loras=[("a", "0.1,0.1,0.5")], clock=clock)
    run_steps(callback, pipe, clock)
    assert pipe.adapter_calls == [(("a",), (0.1,)), (("a",), (0.5,))]
