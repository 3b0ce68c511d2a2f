"""Tiny random-weight image pipelines (Z-Image, Qwen image), built in code with no hub access.

They are the real diffusers classes (`ZImagePipeline`, and `ZImageImg2ImgPipeline` over the same
components) with toy-sized parts: a 2-layer Qwen3 text encoder over a word-level vocabulary with a
chat template (the pipeline formats every prompt as a chat turn), a 16-channel `AutoencoderKL`
with the real 8x compression, and a 2-layer `ZImageTransformer2DModel`. A 64x64 image takes well
under a second on a CPU. Random but deterministic: the same `seed` builds the same model.
"""

from __future__ import annotations

from typing import Any

TEXT_WIDTH = 16
"""The tiny Qwen3 hidden size; the transformer's `cap_feat_dim` must match it."""

_WORDS = (
    "a the cat dog bird red blue green sky sea city night day over in on portrait photo of "
    "painting style blurry low quality"
).split()
# The template words the chat format produces (they must be in the vocabulary, not unknown).
_TEMPLATE_WORDS = ("<|im_start|>", "<|im_end|>", "user", "assistant", "<think>", "</think>")
_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|> {{ message['role'] }} {{ message['content'] }} "
    "<|im_end|> {% endfor %}{% if add_generation_prompt %}<|im_start|> assistant {% endif %}"
)


def build_chat_tokenizer() -> Any:
    """A word-level fast tokenizer (pad 0, unknown 1) with a Qwen-like chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<unk>": 1}
    for word in (*_TEMPLATE_WORDS, *_WORDS):
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>")
    tokenizer.chat_template = _CHAT_TEMPLATE
    return tokenizer


def _qwen3_encoder(vocab_size: int, seed: int) -> Any:
    import torch
    from transformers import Qwen3Config, Qwen3Model

    torch.manual_seed(seed)
    config = Qwen3Config(
        vocab_size=vocab_size,
        hidden_size=TEXT_WIDTH,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        max_position_embeddings=1024,
    )
    return Qwen3Model(config).eval()


def _image_vae(seed: int) -> Any:
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    # Four blocks give the real 8x spatial compression; 16 latent channels as in the Flux-style
    # VAE Z-Image ships with (its scaling and shift factors too).
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        block_out_channels=[8, 8, 8, 8],
        layers_per_block=1,
        latent_channels=16,
        norm_num_groups=4,
        scaling_factor=0.3611,
        shift_factor=0.1159,
    ).eval()


def _zimage_transformer(seed: int) -> Any:
    import torch
    from diffusers import ZImageTransformer2DModel

    torch.manual_seed(seed)
    # Head dim 16 = sum(axes_dims): the 3-axis RoPE splits each head across (frame, row, column).
    return ZImageTransformer2DModel(
        all_patch_size=(2,),
        all_f_patch_size=(1,),
        in_channels=16,
        dim=32,
        n_layers=2,
        n_refiner_layers=1,
        n_heads=2,
        n_kv_heads=2,
        cap_feat_dim=TEXT_WIDTH,
        axes_dims=[4, 6, 6],
        axes_lens=[512, 64, 64],
    ).eval()


def build_zimage_pipeline(seed: int = 0, *, flow_shift: float = 3.0) -> Any:
    """The tiny `ZImagePipeline` (float32, CPU, progress bar off)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline

    tokenizer = build_chat_tokenizer()
    pipe = ZImagePipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=flow_shift),
        vae=_image_vae(seed),
        text_encoder=_qwen3_encoder(len(tokenizer), seed),
        tokenizer=tokenizer,
        transformer=_zimage_transformer(seed),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


_QWEN_SPECIAL = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
)


def build_byte_tokenizer() -> Any:
    """A byte-level BPE tokenizer with no merges (one token per byte) plus Qwen's special tokens.

    The Qwen image pipelines drop a fixed number of template tokens (34) from the front of every
    prompt's hidden states; with one token per byte the template is far longer than that, so the
    prompt's own tokens survive as they do with the real vocabulary."""
    from tokenizers import Tokenizer, decoders, models
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {char: index for index, char in enumerate(sorted(ByteLevel.alphabet()))}
    for token in _QWEN_SPECIAL:
        vocab[token] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<|endoftext|>", additional_special_tokens=list(_QWEN_SPECIAL[1:])
    )


def _qwen_vl_encoder(tokenizer: Any, seed: int) -> Any:
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(seed)
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer), "hidden_size": TEXT_WIDTH, "intermediate_size": 32,
            "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
            "max_position_embeddings": 4096, "bos_token_id": None, "eos_token_id": ids("<|im_end|>"),
            # Multimodal RoPE splits each head's 8 rotary pairs over (time, row, column).
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [1, 1, 2]},
        },
        vision_config={
            "depth": 1, "hidden_size": 16, "intermediate_size": 32, "num_heads": 2, "out_hidden_size": TEXT_WIDTH,
            "fullatt_block_indexes": [0], "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
        },
        image_token_id=ids("<|image_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )  # fmt: skip
    return Qwen2_5_VLForConditionalGeneration(config).eval()


def build_qwen_image_pipeline(seed: int = 0, *, flow_shift: float = 3.0) -> Any:
    """The tiny `QwenImagePipeline` (float32, CPU): a 2-layer Qwen2.5-VL text encoder, the Wan-style
    `AutoencoderKLQwenImage` (8x, 16 channels) and a 2-layer `QwenImageTransformer2DModel`."""
    import torch
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImagePipeline,
        QwenImageTransformer2DModel,
    )

    tokenizer = build_byte_tokenizer()
    text_encoder = _qwen_vl_encoder(tokenizer, seed)
    torch.manual_seed(seed)
    vae = AutoencoderKLQwenImage(
        base_dim=4, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    ).eval()
    torch.manual_seed(seed)
    # in_channels 64 = 16 latent channels x the 2x2 patch packing; head dim 16 = sum(axes_dims_rope).
    transformer = QwenImageTransformer2DModel(
        patch_size=2, in_channels=64, out_channels=16, num_layers=2, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=TEXT_WIDTH, axes_dims_rope=(4, 6, 6),
    ).eval()  # fmt: skip
    pipe = QwenImagePipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=flow_shift),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_qwen_edit_pipeline(seed: int = 0, *, plus: bool = False, flow_shift: float = 3.0) -> Any:
    """The tiny `QwenImageEditPipeline` (or `QwenImageEditPlusPipeline` with `plus`): the tiny
    Qwen-Image parts plus a Qwen2-VL processor whose image side is the PIL one (no torchvision),
    capped at a few hundred pixels so the vision tower sees a handful of patches."""
    from diffusers import QwenImageEditPipeline, QwenImageEditPlusPipeline

    from headless_wan.engine.qwen_processor import image_only_processor

    base = build_qwen_image_pipeline(seed, flow_shift=flow_shift)
    processor = image_only_processor(base.tokenizer, min_pixels=28 * 28, max_pixels=56 * 56)
    cls = QwenImageEditPlusPipeline if plus else QwenImageEditPipeline
    pipe = cls(processor=processor, **base.components)
    pipe.set_progress_bar_config(disable=True)
    return pipe
