"""Engine overhead on the tiny models: the same generation through `Engine.generate` and through a
bare diffusers call, side by side, for each pipeline family (VACE: `WanVACEPipeline`; I2V: the
two-expert `WanImageToVideoPipeline` with first and last frame); then a second task on the warm preset.

    .venv/bin/python benchmarks/engine_overhead.py [--family vace|i2v|both] [--repeats 5] [--frames 17]
                                                   [--size 64] [--steps 4]

Runs offline on a CPU in about a minute. The two paths get identical inputs (same seed, prompts,
scheduler, expert split and sizes), so their outputs must match bit for bit; that is checked too.
Goal: overhead ratio <= 1.02. On a busy machine the two medians drift by more than that; the engine's
own time outside the diffusers call (validation, planning, adapters, settings) is printed too.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

PROMPT, NEGATIVE, SEED = "a red bird flies over the blue sea", "blurry", 7


def measure(label: str, engine: Any, request: Any, direct: Callable[[], Any], args: Any) -> None:
    import numpy as np

    first = engine.generate(request)
    second = engine.generate(request)
    print(f"[{label}] cold task: load {first.metrics['load_s']:.2f} s (includes building the model)")
    print(f"[{label}] warm task: load {second.metrics['load_s']:.4f} s, loads so far: {engine.load_count}")
    direct()  # warm-up: first-call allocations
    direct_s, engine_s, outside_s = [], [], []
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits both sides
        started = time.perf_counter()
        reference = direct()
        direct_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        result = engine.generate(request)
        engine_s.append(time.perf_counter() - started)
        m = result.metrics  # the diffusers call itself is denoise + decode
        outside_s.append(m["generate_s"] - m["denoise_s"] - m["decode_s"])
        ours = result.frames
    d, e = statistics.median(direct_s), statistics.median(engine_s)
    print(
        f"[{label}] {args.frames} frames {args.size}x{args.size}, {args.steps} steps CFG, median of {args.repeats}:"
    )
    print(f"  diffusers direct : {d * 1000:8.1f} ms")
    print(f"  Engine.generate  : {e * 1000:8.1f} ms")
    print(f"  overhead ratio   : {e / d:8.3f}  (+{(e - d) * 1000:.1f} ms per task; goal <= 1.02)")
    print(f"  engine time outside the diffusers call: {statistics.median(outside_s) * 1000:.2f} ms")
    print(f"  identical output : {np.array_equal(reference, ours)}")


def to_uint8(frames: Any) -> Any:
    import numpy as np

    return (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)


def vace(args: Any) -> None:
    import torch

    from headless_wan.engine import Engine, EngineConfig, GenerationRequest, tiny

    engine = Engine(EngineConfig(device="cpu"))
    request = GenerationRequest(
        model="tiny", prompt=PROMPT, negative_prompt=NEGATIVE, width=args.size, height=args.size,
        num_frames=args.frames, steps=args.steps, guidance_scale=5.0, seed=SEED,
    )  # fmt: skip
    pipe = tiny.build_pipeline(seed=0)

    def direct() -> Any:
        return to_uint8(pipe(
            prompt=PROMPT, negative_prompt=NEGATIVE, height=args.size, width=args.size, num_frames=args.frames,
            num_inference_steps=args.steps, guidance_scale=5.0, generator=torch.Generator("cpu").manual_seed(SEED),
            output_type="np", max_sequence_length=512,
        ).frames[0])  # fmt: skip

    measure("vace", engine, request, direct, args)
    engine.close()


def i2v(args: Any) -> None:
    import torch
    from PIL import Image

    from headless_wan.engine import Engine, EngineConfig, GenerationRequest, tiny

    start = Image.new("RGB", (args.size, args.size), (220, 40, 40))
    end = Image.new("RGB", (args.size, args.size), (40, 40, 220))
    engine = Engine(EngineConfig(device="cpu"))
    # CFG on both experts (one value each), so the direct call runs the same passes on every step.
    request = GenerationRequest(
        model="tiny-i2v", prompt=PROMPT, negative_prompt=NEGATIVE, width=args.size, height=args.size,
        num_frames=args.frames, steps=args.steps, guidance_scale=3.0, guidance_scale_2=3.0, seed=SEED,
        start_image=start, end_image=end,
    )  # fmt: skip
    pipe = tiny.build_pipeline(seed=0, family="i2v", two_experts=True, boundary_ratio=0.9)

    def direct() -> Any:
        return to_uint8(pipe(
            image=start, last_image=end, prompt=PROMPT, negative_prompt=NEGATIVE, height=args.size,
            width=args.size, num_frames=args.frames, num_inference_steps=args.steps, guidance_scale=3.0,
            guidance_scale_2=3.0, generator=torch.Generator("cpu").manual_seed(SEED), output_type="np",
            max_sequence_length=512,
        ).frames[0])  # fmt: skip

    measure("i2v", engine, request, direct, args)
    engine.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=("vace", "i2v", "both"), default="both")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    if args.family in ("vace", "both"):
        vace(args)
    if args.family in ("i2v", "both"):
        i2v(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
