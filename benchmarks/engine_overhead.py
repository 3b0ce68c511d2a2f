"""Engine overhead on the tiny model: the same generation through `Engine.generate` and through a
bare `WanVACEPipeline` call, side by side; then a second task on the warm preset (no load).

    .venv/bin/python benchmarks/engine_overhead.py [--repeats 5] [--frames 17] [--size 64] [--steps 4]

Runs offline on a CPU in well under a minute. The two paths get identical inputs (same seed,
prompts, scheduler and sizes), so their outputs must match bit for bit; that is checked too.
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()

    import numpy as np
    import torch

    from headless_wan.engine import Engine, EngineConfig, GenerationRequest, tiny

    prompt, negative, seed = "a red bird flies over the blue sea", "blurry", 7
    engine = Engine(EngineConfig(device="cpu", model_override="tiny"))
    request = GenerationRequest(
        model="tiny", prompt=prompt, negative_prompt=negative, width=args.size, height=args.size,
        num_frames=args.frames, steps=args.steps, guidance_scale=5.0, seed=seed,
    )  # fmt: skip
    first = engine.generate(request)
    second = engine.generate(request)
    print(f"cold task: load {first.metrics['load_s']:.2f} s (includes importing torch/diffusers)")
    print(f"warm task: load {second.metrics['load_s']:.4f} s, loads so far: {engine.load_count}")

    pipe = tiny.build_pipeline(seed=0)

    def direct() -> np.ndarray:
        out = pipe(
            prompt=prompt, negative_prompt=negative, height=args.size, width=args.size, num_frames=args.frames,
            num_inference_steps=args.steps, guidance_scale=5.0, generator=torch.Generator("cpu").manual_seed(seed),
            output_type="np", max_sequence_length=512,
        ).frames[0]  # fmt: skip
        return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)

    direct()  # warm-up: first-call allocations
    direct_s, engine_s = [], []
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits both sides
        started = time.perf_counter()
        reference = direct()
        direct_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        ours = engine.generate(request).frames
        engine_s.append(time.perf_counter() - started)
    d, e = statistics.median(direct_s), statistics.median(engine_s)
    print(f"{args.frames} frames {args.size}x{args.size}, {args.steps} steps CFG, median of {args.repeats}:")
    print(f"  diffusers direct : {d * 1000:8.1f} ms")
    print(f"  Engine.generate  : {e * 1000:8.1f} ms")
    print(f"  overhead ratio   : {e / d:8.3f}  (+{(e - d) * 1000:.1f} ms per task)")
    print(f"  identical output : {np.array_equal(reference, ours)}")
    engine.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
