"""One short real-checkpoint generation on a GPU box, in one command.

    python scripts/gpu_smoke.py                       # Wan2.1 VACE 1.3B, 832x480, 33 frames, 4 steps
    python scripts/gpu_smoke.py --frames 17 --profile fp8 --out smoke.mp4
    python scripts/gpu_smoke.py --weights /models/Wan2.1-VACE-1.3B-diffusers   # a staged local copy

Prints the load time, per-step times, total time and peak VRAM. Weights must already be local
(Hub cache or --weights folder) unless --allow-download is given. Not run in CI (no GPU there).
This is the real-checkpoint check; benchmarks/gpu_segment.py times the full-size A14B architectures
with random weights (no download).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Short real-checkpoint VACE generation with timings.")
    parser.add_argument("--model", default="wan2.1-vace-1.3b", help="preset or Reigh model name")
    parser.add_argument("--weights", help="override the preset's weights (hub id or local folder)")
    parser.add_argument("--resolution", default="832x480", help="WIDTHxHEIGHT, multiples of 16")
    parser.add_argument("--frames", type=int, default=33, help="4n+1 (17-33 keeps it short)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--guidance", type=float, default=5.0)
    parser.add_argument("--profile", default=None, help="memory profile (default: the preset's)")
    parser.add_argument(
        "--attention-backend", default="auto", help="HW_ATTENTION value (auto, native, sage, ...)"
    )
    parser.add_argument("--device", default="cuda")
    parser.add_argument(
        "--allow-download", action="store_true", help="let diffusers download missing weights"
    )
    parser.add_argument("--out", type=Path, help="write the video here (mp4)")
    return parser.parse_args()


def presets_file_with_weights(model: str, weights: str) -> Path:
    """A copy of the presets with one preset's weights replaced (for staged local folders)."""
    from headless_wan.engine.presets import DEFAULT_PRESETS_FILE, load_presets

    preset = load_presets().resolve(model)
    text = DEFAULT_PRESETS_FILE.read_text(encoding="utf-8").replace(
        f'weights = "{preset.weights}"', f"weights = {json.dumps(weights)}"
    )
    path = Path(tempfile.mkdtemp()) / "presets.toml"
    path.write_text(text, encoding="utf-8")
    return path


def main() -> int:
    args = parse_args()
    import torch

    from headless_wan.engine import Engine, EngineConfig, GenerationRequest

    width, height = (int(v) for v in args.resolution.lower().split("x"))
    config = EngineConfig(
        device=args.device,
        memory_profile=args.profile,
        attention_backend=args.attention_backend,
        local_files_only=not args.allow_download,
        presets_file=presets_file_with_weights(args.model, args.weights) if args.weights else None,
        progress_interval_s=0.0,
    )
    engine = Engine(config)
    print(json.dumps(engine.fitness(args.model).__dict__, default=str))
    request = GenerationRequest(
        model=args.model, prompt="a red fox runs through a snowy forest, cinematic light",
        width=width, height=height, num_frames=args.frames, steps=args.steps, guidance_scale=args.guidance, seed=42,
    )  # fmt: skip
    started = time.perf_counter()
    prepared = engine.prepare(request)
    print(f"load: {prepared.load_s:.1f} s (preset {prepared.preset.name}, profile {prepared.profile.name})")
    steps: list[float] = []
    last = [time.perf_counter()]

    def progress(stage: str, step: int, total: int, message: str = "") -> None:
        if stage == "denoising":
            now = time.perf_counter()
            steps.append(now - last[0])
            last[0] = now
            print(f"  step {step}/{total}: {steps[-1]:.2f} s", flush=True)
        elif stage == "decoding":
            last[0] = time.perf_counter()

    last[0] = time.perf_counter()
    result = engine.generate(request, on_progress=progress)
    total = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0
    print(f"frames: {result.frames.shape}, decode: {result.metrics['decode_s']:.1f} s")
    print(f"mean step: {result.metrics['step_mean_s']:.2f} s, total (load + generate): {total:.1f} s")
    print(f"peak VRAM: {peak:.2f} GiB")
    if args.out:
        from headless_wan.media.video_io import encode_video

        encode_video(result.frames, args.out, 16)
        print(f"wrote {args.out}")
    engine.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
