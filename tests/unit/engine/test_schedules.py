"""Exact schedules: the sigmas our schedulers visit equal WGP's (the reference lists below were
computed by hand from WGP's formulas, not by this code), and differ from diffusers' defaults."""

from __future__ import annotations

import pytest

pytest.importorskip("diffusers")

from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

from headless_wan.engine import loading
from headless_wan.engine.schedules import WgpEulerScheduler, WgpUniPCScheduler

# WGP euler, shift 5: shift(linspace(1, 0.001, n)), then 0.
WGP_EULER_6 = [1.0, 0.952438, 0.882526, 0.769674, 0.556788, 0.004980, 0.0]
WGP_EULER_4 = [1.0, 0.909215, 0.714897, 0.004980, 0.0]
# WGP unipc, shift 5: shift(linspace(0.999, 0, n + 1)[:-1]), then 0; timesteps truncated to ints.
WGP_UNIPC_6 = [0.999800, 0.961316, 0.908843, 0.833055, 0.713979, 0.499700, 0.0]
WGP_UNIPC_6_TIMESTEPS = [999, 961, 908, 833, 713, 499]
# WGP unipc, shift 3, 4 steps.
WGP_UNIPC_4_SHIFT3 = [0.999666, 0.899640, 0.749625, 0.499667, 0.0]


def _unipc(cls: type, shift: float) -> UniPCMultistepScheduler:
    return cls(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift)


@pytest.mark.parametrize(("steps", "expected"), [(6, WGP_EULER_6), (4, WGP_EULER_4)])
def test_euler_sigmas_equal_wgp(steps: int, expected: list[float]) -> None:
    scheduler = WgpEulerScheduler(shift=5.0)
    scheduler.set_timesteps(steps)
    assert scheduler.sigmas.tolist() == pytest.approx(expected, abs=2e-6)
    assert scheduler.timesteps.tolist() == pytest.approx([s * 1000 for s in expected[:-1]], abs=2e-3)


def test_euler_last_step_differs_from_diffusers_default() -> None:
    ours, theirs = WgpEulerScheduler(shift=5.0), FlowMatchEulerDiscreteScheduler(shift=5.0)
    ours.set_timesteps(6)
    theirs.set_timesteps(6)
    assert float(ours.sigmas[-2]) == pytest.approx(0.00498, abs=1e-5)
    assert float(theirs.sigmas[-2]) == pytest.approx(0.0244, abs=1e-4)


@pytest.mark.parametrize(
    ("steps", "shift", "expected"), [(6, 5.0, WGP_UNIPC_6), (4, 3.0, WGP_UNIPC_4_SHIFT3)]
)
def test_unipc_sigmas_equal_wgp(steps: int, shift: float, expected: list[float]) -> None:
    scheduler = _unipc(WgpUniPCScheduler, shift)
    scheduler.set_timesteps(steps)
    assert scheduler.sigmas.tolist() == pytest.approx(expected, abs=2e-6)


def test_unipc_timesteps_equal_wgp_and_differ_from_diffusers() -> None:
    ours, theirs = _unipc(WgpUniPCScheduler, 5.0), _unipc(UniPCMultistepScheduler, 5.0)
    ours.set_timesteps(6)
    theirs.set_timesteps(6)
    assert ours.timesteps.tolist() == WGP_UNIPC_6_TIMESTEPS
    assert theirs.timesteps.tolist() != WGP_UNIPC_6_TIMESTEPS


def test_explicit_sigmas_still_win() -> None:
    scheduler = WgpEulerScheduler(shift=1.0)
    scheduler.set_timesteps(sigmas=[1.0, 0.5])
    assert scheduler.sigmas.tolist() == pytest.approx([1.0, 0.5, 0.0])


@pytest.mark.parametrize(("solver", "first", "last"), [("euler", 1000.0, 4.98), ("unipc", 999.0, 499.0)])
def test_engine_schedulers_plan_wgp_timesteps(solver: str, first: float, last: float) -> None:
    """The schedulers the engine installs per task (checkpoint config or tiny fallback)."""
    for base in ({"num_train_timesteps": 1000}, dict(_unipc(UniPCMultistepScheduler, 3.0).config)):
        scheduler = loading._make_scheduler(base, solver, 5.0)
        planned = loading.planned_timesteps(scheduler, 6)
        assert planned[0] == pytest.approx(first, abs=0.01)
        assert planned[-1] == pytest.approx(last, abs=0.01)
