"""One production-shaped segment on the full-size architecture of a preset, with random weights.

    python benchmarks/gpu_segment.py                        # H200: wan2.2-i2v-lightning-2-2-2, 832x480x81
    python benchmarks/gpu_segment.py --profiles resident,fp8_scaled --attention auto,native --compile
    python benchmarks/gpu_segment.py --tiny                 # CPU: the tiny model, a few frames (CI)
    python benchmarks/gpu_segment.py --sizes                # parameter counts and weight GB per profile

No download: the experts (Wan2.2 A14B layout, VACE or I2V), UMT5-XXL and the Wan VAE are built from
their published configs with random weights, directly on the device in the preset's dtype, so the
GPU machines without network can time the real shapes. Random weights give noise, but every matmul,
attention call and decode has the production shape and cost.

Each (memory profile, attention backend) pair runs through the worker's own engine (scheduler,
phase plan, expert switch, profile, compile) once as a first task and once timed, with
`torch.cuda.synchronize()` around every measured step. Reported apart: `load_s` (weights,
profile), `compile_warmup_s` (the engine's compile warm-up at load; 0 without --compile),
`first_task_s` (the first task after the load), and the timed run's steady-state step times per
expert, decode and total; `graphs_compiled_by_tasks` counts graphs dynamo compiled during the two
tasks (0 when the warm-up covered them). Then the same pipeline runs as a plain diffusers call
(native attention, resident, diffusers' default scheduler, two phases by the pipeline's own
boundary) for the ratio. Prints one JSON object per run and a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import tomllib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from headless_wan.engine import Engine, GenerationRequest, loading  # noqa: E402
from headless_wan.engine.config import EngineConfig  # noqa: E402
from headless_wan.engine.presets import parse_presets  # noqa: E402

FULL_NAME = "bench-fullsize"
# Published configs (Wan-AI/Wan2.2-*-A14B-Diffusers, Wan2.2-VACE-Fun): 40 blocks of 40 heads x 128.
WAN_A14B = dict(
    patch_size=(1, 2, 2), num_attention_heads=40, attention_head_dim=128, out_channels=16,
    text_dim=4096, freq_dim=256, ffn_dim=13824, num_layers=40, cross_attn_norm=True,
    qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024,
)  # fmt: skip
VACE_EXTRA = dict(in_channels=16, vace_layers=[0, 5, 10, 15, 20, 25, 30, 35], vace_in_channels=96)
UMT5_XXL = dict(
    vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
    relative_attention_num_buckets=32, relative_attention_max_distance=128,
    feed_forward_proj="gated-gelu", dense_act_fn="gelu_new", is_gated_act=True,
)  # fmt: skip


def build_fullsize(
    family: str, two_experts: bool, boundary_ratio: float | None, device: str, dtype: Any
) -> Any:
    import torch
    from diffusers import (
        AutoencoderKLWan,
        WanImageToVideoPipeline,
        WanTransformer3DModel,
        WanVACEPipeline,
        WanVACETransformer3DModel,
    )
    from transformers import UMT5Config, UMT5EncoderModel

    from headless_wan.engine import tiny

    def expert() -> Any:
        if family == "vace":
            return WanVACETransformer3DModel(**WAN_A14B, **VACE_EXTRA)
        return WanTransformer3DModel(**WAN_A14B, in_channels=36)

    with torch.device(device):
        torch.set_default_dtype(dtype)
        try:
            transformer = expert().eval()
            transformer_2 = expert().eval() if two_experts else None
            text_encoder = UMT5EncoderModel(UMT5Config(**UMT5_XXL)).eval()
        finally:
            torch.set_default_dtype(torch.float32)
        vae = AutoencoderKLWan().eval()  # the Wan 2.1 VAE (the A14B models use it), float32
    cls = WanVACEPipeline if family == "vace" else WanImageToVideoPipeline
    pipe = cls(
        tokenizer=tiny.build_tokenizer(),  # ids of a small vocabulary are valid UMT5 ids
        text_encoder=text_encoder,
        vae=vae,
        scheduler=tiny.build_scheduler("euler"),
        transformer=transformer,
        transformer_2=transformer_2,
        boundary_ratio=boundary_ratio,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sizes(family: str, two_experts: bool) -> dict[str, float]:
    """Weight GB per component on the meta device (no memory used)."""
    import torch

    with torch.device("meta"):
        pipe = build_fullsize(family, two_experts, 0.9 if two_experts else None, "meta", torch.bfloat16)
    out = {}
    for name in ("transformer", "transformer_2", "text_encoder", "vae"):
        module = getattr(pipe, name, None)
        if module is not None:
            out[f"{name}_params_b"] = sum(p.numel() for p in module.parameters()) / 1e9
    experts_b = out["transformer_params_b"] + out.get("transformer_2_params_b", 0.0)
    out["experts_bf16_gb"] = experts_b * 2
    out["experts_fp8_gb"] = experts_b * 1
    out["text_encoder_bf16_gb"] = out["text_encoder_params_b"] * 2
    return out


def bench_preset(name: str, tiny: bool) -> tuple[Any, Any]:
    """(registry, preset) with the preset's weights replaced by the full-size (or tiny) builder."""
    data = tomllib.loads((ROOT / "configs" / "presets.toml").read_text())
    body = dict(data["presets"][name])
    body.pop("counterparts", None)  # the benchmark runs one preset
    if tiny:
        body["weights"] = "builtin:tiny-i2v" if body.get("family") == "i2v" else "builtin:tiny-2experts"
        body["resolutions"] = ["32x32"]
    else:
        body["weights"] = f"builtin:{FULL_NAME}"
    registry = parse_presets({"presets": {"bench": body}}, source="benchmark")
    return registry, registry.resolve("bench")


def run_engine(registry: Any, args: argparse.Namespace, profile: str, backend: str) -> dict[str, Any]:
    import numpy as np
    import torch
    from PIL import Image

    device = "cpu" if args.tiny else "cuda"
    engine = Engine(
        EngineConfig(device=device, memory_profile=profile, attention_backend=backend, compile=args.compile)
    )
    engine._registry = registry  # the benchmark's own preset (same parse as configs/presets.toml)
    preset = registry.resolve("bench")
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (args.height, args.width, 3), np.uint8))
    request = GenerationRequest(
        model="bench", prompt="a cat walks over the sea at night", width=args.width, height=args.height,
        num_frames=args.frames, start_image=image if preset.family == "i2v" else None,
    )  # fmt: skip
    started = time.perf_counter()
    loaded = engine.prepare(request).loaded
    load_s = time.perf_counter() - started
    warmup_s = loaded.warmup_s or 0.0  # the engine's compile warm-up, part of the load
    graphs = _compiled_graphs()
    started = time.perf_counter()
    engine.generate(request)  # the first task: cudnn/cuBLAS autotuning, allocator growth
    _sync(device)
    first_task_s = time.perf_counter() - started
    marks: list[float] = []

    def on_progress(stage: str, step: int, total: int, message: str = "") -> None:
        if stage == "denoising":
            if device == "cuda":
                torch.cuda.synchronize()
            marks.append(time.perf_counter())

    engine.config = dataclasses.replace(engine.config, progress_interval_s=0.0)
    _sync(device)
    started = time.perf_counter()
    marks.append(started)  # so the first step (which also encodes the prompt) is timed too
    result = engine.generate(request, on_progress=on_progress)
    _sync(device)
    total_s = time.perf_counter() - started
    steps = [b - a for a, b in itertools.pairwise(marks)]
    switch = result.settings.get("expert_switch_step") or len(steps)
    row = {
        "profile": profile, "attention": backend, "attention_used": result.settings["attention_backend"],
        "compile": args.compile, "load_s": load_s - warmup_s, "compile_warmup_s": warmup_s,
        "first_task_s": first_task_s, "graphs_compiled_by_tasks": _compiled_graphs() - graphs,
        "total_s": total_s,
        "step_s_expert_1": _mean(steps[:switch]), "step_s_expert_2": _mean(steps[switch:]),
        "decode_s": result.metrics["decode_s"], "peak_vram_gb": result.metrics.get("peak_vram_mb", 0) / 1024,
    }  # fmt: skip
    row["plain_diffusers_s"] = plain_call(engine, request, device)
    row["ratio_vs_plain"] = row["plain_diffusers_s"] / total_s
    engine.close()
    return row


def plain_call(engine: Any, request: Any, device: str) -> float:
    """The same pipeline called the way diffusers documents it: native attention, diffusers'
    default euler schedule, CFG on the pipeline's own two-guidance split."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    loaded = engine._cache.current
    pipe, preset = loaded.pipe, engine.presets.resolve("bench")
    for expert in (pipe.transformer, getattr(pipe, "transformer_2", None)):
        if expert is not None:
            expert.set_attention_backend("native")
    pipe.scheduler = FlowMatchEulerDiscreteScheduler(shift=preset.flow_shift)
    kwargs = {"image": request.start_image} if request.start_image is not None else {}
    call = dict(
        prompt=request.prompt, height=request.height, width=request.width, num_frames=request.num_frames,
        num_inference_steps=preset.steps, guidance_scale=preset.guidance_scale, output_type="np", **kwargs,
    )  # fmt: skip
    if preset.guidance_scale_2 is not None:
        call["guidance_scale_2"] = preset.guidance_scale_2
    pipe(**call)  # warm-up
    _sync(device)
    started = time.perf_counter()
    pipe(**call)
    _sync(device)
    return time.perf_counter() - started


def _compiled_graphs() -> int:
    """dynamo's count of graphs compiled so far in this process (0 without compile)."""
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="wan2.2-i2v-lightning-2-2-2")
    parser.add_argument("--tiny", action="store_true", help="CPU: the tiny model at 32x32x5 (CI)")
    parser.add_argument("--sizes", action="store_true", help="print parameter counts and exit")
    parser.add_argument("--profiles", default="resident")
    parser.add_argument("--attention", default="auto")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--width", type=int)
    parser.add_argument("--height", type=int)
    parser.add_argument("--frames", type=int)
    args = parser.parse_args(argv)
    registry, preset = bench_preset(args.preset, args.tiny)
    if args.sizes:
        print(json.dumps({"preset": args.preset, **sizes(preset.family, preset.two_experts)}, indent=1))
        return 0
    args.width = args.width or (32 if args.tiny else 832)
    args.height = args.height or (32 if args.tiny else 480)
    args.frames = args.frames or (5 if args.tiny else 81)
    loading.EXTRA_BUILTINS[FULL_NAME] = lambda spec, dtype: build_fullsize(
        spec.family, spec.two_experts, spec.boundary_ratio, spec.device, dtype
    )
    rows = []
    for profile in args.profiles.split(","):
        for backend in args.attention.split(","):
            row = {"preset": args.preset, "shape": f"{args.width}x{args.height}x{args.frames}"}
            row.update(run_engine(registry, args, profile, backend))
            print(json.dumps(row), flush=True)
            rows.append(row)
    _table(rows)
    return 0


def _table(rows: list[dict[str, Any]]) -> None:
    cols = ("profile", "attention_used", "load_s", "compile_warmup_s", "first_task_s", "step_s_expert_1",
            "step_s_expert_2", "decode_s", "total_s", "peak_vram_gb", "plain_diffusers_s",
            "ratio_vs_plain")  # fmt: skip
    print(" | ".join(cols))
    for row in rows:
        print(" | ".join(f"{row[c]:.2f}" if isinstance(row[c], float) else str(row[c]) for c in cols))


if __name__ == "__main__":
    raise SystemExit(main())
