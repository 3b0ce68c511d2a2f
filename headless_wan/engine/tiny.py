"""Tiny random-weight Wan pipelines (VACE, image-to-video, text-to-video), built in code with no hub access.

They are the real `WanVACEPipeline`, `WanImageToVideoPipeline` and `WanPipeline` classes with toy-sized
components, so every engine code path (loading policy, LoRAs, memory profiles, phase switching,
callbacks) runs on a CPU in well under a second. The `tiny*` presets load them; tests and CPU demos use those presets.

The weights are random but deterministic: the same `seed` always builds the same model, which is
what makes output comparisons between runs (LoRA on/off, profiles, determinism) meaningful.
Torch, diffusers and transformers are imported inside the functions (the engine package must stay
cheap to import).
"""

from __future__ import annotations

from typing import Any

# The tiny text encoder's width; the transformer's `text_dim` must match it.
TEXT_WIDTH = 32
# Transformer depth.
TRANSFORMER_LAYERS = 3

_WORDS = (
    "a the cat dog bird dance dances monkey blue red green sky sea runs flies walks over in on "
    "blurry low quality person city night day fading breaking noise distorted"
).split()
_CHARACTERS = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-")
# SentencePiece marks the start of a word with this character.
_WORD_START = "\u2581"


def build_tokenizer() -> Any:
    """A unigram T5 tokenizer over a small in-code vocabulary.

    Ids 0, 1 and 2 are `<pad>`, `</s>` and `<unk>`, as in the real UMT5 vocabulary. Whole words
    score better than single characters, so known words become one token and anything else is
    spelled out character by character (never unknown).
    """
    from transformers import T5Tokenizer

    pieces: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), (_WORD_START, -2.0)]
    pieces += [(_WORD_START + word, -1.0) for word in _WORDS]
    pieces += [(_WORD_START + char, -3.0) for char in _CHARACTERS if char not in _WORDS]
    pieces += [(char, -4.0) for char in _CHARACTERS]
    return T5Tokenizer(vocab=pieces, extra_ids=0)


def _text_encoder(vocab_size: int, seed: int) -> Any:
    import torch
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    config = UMT5Config(
        vocab_size=vocab_size,
        d_model=TEXT_WIDTH,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=32,
        dropout_rate=0.0,
        feed_forward_proj="gated-gelu",
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    return UMT5EncoderModel(config).eval()


def _vae(seed: int) -> Any:
    import torch
    from diffusers import AutoencoderKLWan

    torch.manual_seed(seed)
    # Same compression as the real Wan VAE (8x spatial, 4x temporal, 16 latent channels),
    # with almost no width: that keeps the latent layout, and so every size rule, realistic.
    return AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    ).eval()


# Per family: the pipeline class, the transformer class and what differs in the transformer's layout.
_FAMILIES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "vace": (
        "WanVACEPipeline",
        "WanVACETransformer3DModel",
        # 16 inactive + 16 reactive latent channels + 64 channels of 8x8-folded mask; VACE hint layers
        # sit on the first and the last block.
        {"in_channels": 16, "vace_layers": [0, TRANSFORMER_LAYERS - 1], "vace_in_channels": 96},
    ),
    "i2v": (
        "WanImageToVideoPipeline",
        "WanTransformer3DModel",
        # The Wan2.2 I2V A14B layout: no CLIP image branch (image_dim None); the input is the noisy
        # latent (16) + the encoded first/last-frame video (16) + the 4-channel frame mask = 36.
        {"in_channels": 36},
    ),
    "t2v": (
        "WanPipeline",
        "WanTransformer3DModel",
        # The Wan2.2 T2V A14B layout: the I2V one with the noisy latent alone as input (16); built with
        # two experts (`two_experts=True`), as that checkpoint has.
        {"in_channels": 16},
    ),
}


def _transformer(family: str, seed: int) -> Any:
    import diffusers
    import torch

    _, transformer_class, layout = _FAMILIES[family]
    torch.manual_seed(seed)
    return getattr(diffusers, transformer_class)(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        out_channels=16,
        text_dim=TEXT_WIDTH,
        freq_dim=256,
        ffn_dim=32,
        num_layers=TRANSFORMER_LAYERS,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        **layout,
    ).eval()


def build_scheduler(solver: str = "unipc", flow_shift: float = 3.0) -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

    if solver == "euler":
        return FlowMatchEulerDiscreteScheduler(shift=flow_shift)
    return UniPCMultistepScheduler(
        prediction_type="flow_prediction",
        use_flow_sigmas=True,
        num_train_timesteps=1000,
        flow_shift=flow_shift,
    )


def build_pipeline(
    seed: int = 0,
    *,
    family: str = "vace",
    two_experts: bool = False,
    boundary_ratio: float = 0.875,
    solver: str = "unipc",
    flow_shift: float = 3.0,
) -> Any:
    """Build a tiny Wan pipeline (float32, on the CPU, progress bar off): `WanVACEPipeline` for the
    `vace` family, `WanImageToVideoPipeline` (first/last-frame conditioning through the latent
    channels) for `i2v`, `WanPipeline` (text to video) for `t2v`.

    With `two_experts`, a second transformer with different weights serves the low-noise steps,
    laid out like the Wan 2.2 community conversions (`transformer_2` + `boundary_ratio`).
    """
    import diffusers

    if family not in _FAMILIES:
        raise ValueError(f"family: {family!r} has no tiny build (known: {', '.join(sorted(_FAMILIES))})")
    tokenizer = build_tokenizer()
    pipe = getattr(diffusers, _FAMILIES[family][0])(
        tokenizer=tokenizer,
        text_encoder=_text_encoder(len(tokenizer), seed),
        vae=_vae(seed),
        scheduler=build_scheduler(solver, flow_shift),
        transformer=_transformer(family, seed),
        transformer_2=_transformer(family, seed + 1) if two_experts else None,
        boundary_ratio=boundary_ratio if two_experts else None,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def lora_target_modules(num_layers: int = TRANSFORMER_LAYERS) -> list[tuple[str, int, int]]:
    """(module path, in features, out features) of the tiny transformer's attention projections:
    what a LoRA file for the tiny models (VACE and I2V alike) can target (tests build LoRAs from this)."""
    width = 2 * 12  # heads x head dim
    names = []
    for block in range(num_layers):
        for attention in ("attn1", "attn2"):
            for projection in ("to_q", "to_k", "to_v", "to_out.0"):
                names.append((f"blocks.{block}.{attention}.{projection}", width, width))
    return names
