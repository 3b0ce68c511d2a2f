"""Tiny random-weight Wan pipelines (VACE and image-to-video), built in code with no hub access.

They are the real `WanVACEPipeline` and `WanImageToVideoPipeline` classes with toy-sized components,
so every engine code path (loading policy, LoRAs, memory profiles, phase switching, callbacks) runs
on a CPU in well under a second. The `tiny*` presets load them; tests and CPU demos use those presets.

The weights are random but deterministic: the same `seed` always builds the same model, which is
what makes output comparisons between runs (LoRA on/off, profiles, determinism) meaningful.
Torch, diffusers and transformers are imported inside the functions (the engine package must stay
cheap to import).
"""

from __future__ import annotations

from typing import Any

# The tiny text encoder's width; the transformer's `text_dim` must match it.
TEXT_WIDTH = 32
# Transformer depth; VACE hint layers sit on the first and the last block.
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


def _transformer(seed: int) -> Any:
    import torch
    from diffusers import WanVACETransformer3DModel

    torch.manual_seed(seed)
    return WanVACETransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=TEXT_WIDTH,
        freq_dim=256,
        ffn_dim=32,
        num_layers=TRANSFORMER_LAYERS,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        vace_layers=[0, TRANSFORMER_LAYERS - 1],
        # 16 inactive + 16 reactive latent channels + 64 channels of 8x8-folded mask.
        vace_in_channels=96,
    ).eval()


def _i2v_transformer(seed: int, *, in_channels: int = 36) -> Any:
    import torch
    from diffusers import WanTransformer3DModel

    torch.manual_seed(seed)
    # The Wan2.2 I2V A14B layout: no CLIP image branch (image_dim None); the input is the noisy
    # latent (16) + the encoded first/last-frame video (16) + the 4-channel frame mask = 36.
    # The T2V layout is the same with the noisy latent alone (16).
    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=in_channels,
        out_channels=16,
        text_dim=TEXT_WIDTH,
        freq_dim=256,
        ffn_dim=32,
        num_layers=TRANSFORMER_LAYERS,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
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
    two_experts: bool = False,
    boundary_ratio: float = 0.875,
    solver: str = "unipc",
    flow_shift: float = 3.0,
) -> Any:
    """Build the tiny `WanVACEPipeline` (float32, on the CPU, progress bar off).

    With `two_experts`, a second transformer with different weights serves the low-noise steps,
    laid out like the Wan 2.2 community conversions (`transformer_2` + `boundary_ratio`).
    """
    from diffusers import WanVACEPipeline

    tokenizer = build_tokenizer()
    pipe = WanVACEPipeline(
        tokenizer=tokenizer,
        text_encoder=_text_encoder(len(tokenizer), seed),
        vae=_vae(seed),
        scheduler=build_scheduler(solver, flow_shift),
        transformer=_transformer(seed),
        transformer_2=_transformer(seed + 1) if two_experts else None,
        boundary_ratio=boundary_ratio if two_experts else None,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_i2v_pipeline(
    seed: int = 0,
    *,
    two_experts: bool = True,
    boundary_ratio: float = 0.9,
    solver: str = "unipc",
    flow_shift: float = 3.0,
) -> Any:
    """Build the tiny `WanImageToVideoPipeline` (float32, CPU): first/last-frame conditioning
    through the latent channels, one or two experts (`transformer_2` + `boundary_ratio`)."""
    from diffusers import WanImageToVideoPipeline

    tokenizer = build_tokenizer()
    pipe = WanImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=_text_encoder(len(tokenizer), seed),
        vae=_vae(seed),
        scheduler=build_scheduler(solver, flow_shift),
        transformer=_i2v_transformer(seed),
        transformer_2=_i2v_transformer(seed + 1) if two_experts else None,
        boundary_ratio=boundary_ratio if two_experts else None,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_t2v_pipeline(seed: int = 0, *, boundary_ratio: float = 0.875, solver: str = "unipc") -> Any:
    """Build the tiny two-expert `WanPipeline` (Wan2.2 T2V A14B layout, in_channels 16; float32, CPU)."""
    from diffusers import WanPipeline

    tokenizer = build_tokenizer()
    pipe = WanPipeline(
        tokenizer=tokenizer,
        text_encoder=_text_encoder(len(tokenizer), seed),
        vae=_vae(seed),
        scheduler=build_scheduler(solver),
        transformer=_i2v_transformer(seed, in_channels=16),
        transformer_2=_i2v_transformer(seed + 1, in_channels=16),
        boundary_ratio=boundary_ratio,
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
