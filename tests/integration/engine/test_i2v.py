"""The image-to-video family on the tiny two-expert I2V model: the real `WanImageToVideoPipeline`,
first/last frame inputs, phase plans switching expert, CFG and LoRA weights at the planned steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headless_wan.engine import Engine, parse_phase_config

from .conftest import tiny_request, write_lora

pytestmark = pytest.mark.slow

RED = Image.new("RGB", (48, 40), (220, 30, 30))
BLUE = Image.new("RGB", (48, 40), (30, 30, 220))


def i2v_request(**changes: object):
    values: dict = {"model": "tiny-i2v", "start_image": RED, "end_image": BLUE, "num_frames": 9}
    values.update(changes)
    return tiny_request(**values)


def test_tiny_i2v_generates_on_the_image_to_video_pipeline(make_engine) -> None:
    result = make_engine().generate(i2v_request())
    assert result.frames.shape == (9, 32, 32, 3) and result.frames.dtype == np.uint8
    settings = result.settings
    assert (settings["family"], settings["pipeline_class"]) == ("i2v", "WanImageToVideoPipeline")
    assert settings["image_start"] and settings["image_end"] and not settings["video_guide"]


def halves(kind: int) -> Image.Image:
    """Low-frequency test images (random pixels average out in the tiny VAE's 8x8 latents)."""
    pixels = np.zeros((32, 32, 3), np.uint8)
    if kind == 0:
        pixels[:, :16] = 255
    elif kind == 1:
        pixels[:16, :] = 255
    else:
        pixels[..., 2] = 255
    return Image.fromarray(pixels)


def condition_inputs(engine: Engine) -> list:
    """The high-noise expert's first input of each run: [noisy latent 16 | frame mask 4 | encoded
    first/last-frame video 16] channels by latent frame."""
    seen: list = []
    pipe = engine._cache.current.pipe

    def hook(module, args, kwargs):
        seen.append(kwargs["hidden_states"].detach().clone())

    pipe.transformer.register_forward_pre_hook(hook, with_kwargs=True)
    return seen


def test_first_and_last_frames_reach_the_pipeline_and_move_the_output(make_engine) -> None:
    engine = make_engine()
    base = i2v_request(start_image=halves(0), end_image=halves(1), steps=2)
    first = engine.generate(base).frames
    seen = condition_inputs(engine)
    again = engine.generate(base).frames
    other_end = engine.generate(i2v_request(start_image=halves(0), end_image=halves(2), steps=2)).frames
    other_start = engine.generate(i2v_request(start_image=halves(2), end_image=halves(1), steps=2)).frames
    no_end = engine.generate(i2v_request(start_image=halves(0), end_image=None, steps=2)).frames
    assert np.array_equal(first, again)  # deterministic: every change below comes from an input
    assert not np.array_equal(first, no_end) and not np.array_equal(first, other_start)
    inputs = [seen[i * 2] for i in range(4)]  # CFG is on: two forwards per step, first one per run
    video = slice(20, 36)
    end_moved = (inputs[0][:, video] - inputs[1][:, video]).abs().amax(dim=(0, 1, 3, 4))
    assert end_moved[-1] > 1e-4 and end_moved[0] == 0  # the end image: last latent frame only
    start_moved = (inputs[0][:, video] - inputs[2][:, video]).abs().amax(dim=(0, 1, 3, 4))
    assert start_moved[0] > 1e-4
    mask = slice(16, 20)
    assert not (inputs[0][:, mask] == inputs[3][:, mask]).all()  # no end image: last frame unmasked
    assert other_end.shape == first.shape
    assert engine.load_count == 1


def test_the_override_runs_an_app_i2v_model_on_the_tiny_i2v(make_engine) -> None:
    engine = make_engine(model_override="tiny")
    result = engine.generate(i2v_request(model="wan_2_2_i2v_lightning_baseline_2_2_2"))
    assert result.settings["preset"] == "tiny-i2v"
    assert result.settings["model"] == "wan_2_2_i2v_lightning_baseline_2_2_2"
    assert result.settings["pipeline_class"] == "WanImageToVideoPipeline"


def record_steps(engine: Engine) -> list[str]:
    """Forward calls of each expert and adapter-weight changes, in the order they happen."""
    pipe = engine._cache.current.pipe
    events: list[str] = []
    for name in ("transformer", "transformer_2"):
        getattr(pipe, name).register_forward_pre_hook(lambda *_, name=name: events.append(name))
    original = pipe.set_adapters

    def recording(names, adapter_weights=None):
        events.append(f"lora={adapter_weights[0]['transformer']}")
        return original(names, adapter_weights=adapter_weights)

    pipe.set_adapters = recording
    return events


def test_a_reigh_phase_plan_switches_expert_cfg_and_lora_weights_at_its_steps(
    make_engine, tmp_path: Path
) -> None:
    lora = str(write_lora(tmp_path / "lightning.safetensors"))
    phases = parse_phase_config({
        "num_phases": 3, "steps_per_phase": [2, 2, 2], "flow_shift": 5, "sample_solver": "euler",
        "model_switch_phase": 2, "phases": [
            {"guidance_scale": 3.0, "loras": [{"url": lora, "multiplier": "0.1,0.3"}]},
            {"guidance_scale": 1.0, "loras": [{"url": lora, "multiplier": "0.5"}]},
            {"guidance_scale": 1.0, "loras": [{"url": lora, "multiplier": "0.9"}]}]})  # fmt: skip
    engine = make_engine()
    engine.generate(i2v_request(phases=phases))  # load (and apply the adapter) first
    events = record_steps(engine)
    result = engine.generate(i2v_request(phases=phases))
    high, low = "transformer", "transformer_2"
    assert events == [
        "lora=0.1", high, high,  # step 1: high-noise expert, CFG on (conditional + unconditional)
        "lora=0.3", high, high,  # step 2
        "lora=0.5", high,  # steps 3-4: CFG off
        high,
        "lora=0.9", low,  # steps 5-6: the low-noise expert after phase 2
        low,
    ]  # fmt: skip
    plan = result.settings["phase_plan"]
    assert [s["expert"] for s in plan] == ["high_noise"] * 4 + ["low_noise"] * 2
    assert [s["guidance"] for s in plan] == [3.0, 3.0, 1.0, 1.0, 1.0, 1.0]
    assert result.settings["expert_switch_step"] == 4


def test_two_phase_3_3_config_switches_after_phase_one(make_engine) -> None:
    phases = parse_phase_config(
        {
            "steps_per_phase": [3, 3],
            "model_switch_phase": 1,
            "phases": [{"guidance_scale": 1}, {"guidance_scale": 1}],
        }
    )
    engine = make_engine()
    engine.generate(i2v_request(steps=1))
    events = record_steps(engine)
    engine.generate(i2v_request(phases=phases))
    assert events == ["transformer"] * 3 + ["transformer_2"] * 3


def test_the_single_expert_i2v_layout_runs_without_a_second_guidance(make_engine) -> None:
    # Wan2.1 I2V / FLF2V have one transformer and no boundary: guidance_scale_2 must not be passed.
    result = make_engine().generate(i2v_request(model="tiny-i2v-1expert", steps=2, guidance_scale=4.0))
    assert result.frames.shape == (9, 32, 32, 3)
    assert result.settings["expert_switch_step"] is None and result.settings["boundary_ratio"] is None
    assert {s["expert"] for s in result.settings["phase_plan"]} == {"high_noise"}
