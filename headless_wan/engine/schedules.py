"""Exact flow-match schedules: the sigmas WGP (the predecessor's engine) samples with.

Lightning LoRAs were distilled on WGP's timesteps, and diffusers' defaults differ from them:

- euler: WGP takes `linspace(1, 0.001, steps)`, applies the shift and steps to 0 from the last one,
  so a 6-step run at shift 5 ends at sigma 0.005 (timestep 5). diffusers' FlowMatchEulerDiscreteScheduler
  starts from shifted training sigmas and ends at 0.024 (timestep 24), a different last step.
- unipc: WGP takes `linspace(0.999, 0, steps + 1)[:-1]`, shifted; diffusers' flow UniPC takes
  `linspace(1, 0.001, steps + 1)[:-1]`, shifted (a 6-step run at shift 5: last timestep 499 vs 501).

Both subclasses only change the sigmas used when the pipeline asks for `num_inference_steps`
(every Wan pipeline does); explicit `sigmas=` still win. The shift, the terminal 0 and the solver
steps are diffusers' own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

# The first sigma of WGP's unipc is one training step below 1 (1 - 1/1000).
_UNIPC_SIGMA_MAX = 0.999
_EULER_SIGMA_LAST = 0.001


def euler_base_sigmas(steps: int) -> list[float]:
    """Unshifted sigmas of WGP's euler schedule (the scheduler applies the shift)."""
    return np.linspace(1.0, _EULER_SIGMA_LAST, steps, dtype=np.float32).tolist()


def unipc_base_sigmas(steps: int) -> np.ndarray:
    """Unshifted sigmas of WGP's unipc schedule (the scheduler applies the shift; diffusers' UniPC
    does arithmetic on them, so an array, not a list)."""
    return np.linspace(_UNIPC_SIGMA_MAX, 0.0, steps + 1)[:-1]


class WgpEulerScheduler(FlowMatchEulerDiscreteScheduler):
    """FlowMatchEulerDiscreteScheduler on WGP's euler sigmas."""

    def set_timesteps(self, num_inference_steps: int | None = None, *args: Any, **kwargs: Any) -> None:
        if num_inference_steps is not None and kwargs.get("sigmas") is None and not kwargs.get("timesteps"):
            kwargs["sigmas"] = euler_base_sigmas(num_inference_steps)
        super().set_timesteps(num_inference_steps, *args, **kwargs)


class WgpUniPCScheduler(UniPCMultistepScheduler):
    """Flow UniPC on WGP's unipc sigmas (needs `use_flow_sigmas`, as every Wan checkpoint sets)."""

    def set_timesteps(self, num_inference_steps: int | None = None, *args: Any, **kwargs: Any) -> None:
        if num_inference_steps is not None and kwargs.get("sigmas") is None and self.config.use_flow_sigmas:
            kwargs["sigmas"] = unipc_base_sigmas(num_inference_steps)
        super().set_timesteps(num_inference_steps, *args, **kwargs)
