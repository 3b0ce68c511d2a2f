"""The Qwen2-VL processor of the Qwen image edit pipelines, without torchvision.

`transformers.Qwen2VLProcessor` also wants a video processor, and transformers' video processors
need torchvision, which this project does not install (the PyPI wheel matching our torch is built
for CUDA and does not import with CPU torch). The edit pipelines only ever pass images, so
`ImageOnlyQwenVLProcessor` is that processor with its video half left out, and its image half is
always the PIL implementation (`Qwen2VLImageProcessorPil`), loaded explicitly rather than by
transformers' backend choice. Real checkpoints (their `processor/` folder) and the tiny model use
this same class. Imported lazily (transformers).
"""

from __future__ import annotations

from typing import Any

from transformers import AutoTokenizer, Qwen2VLProcessor
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.processing_utils import ProcessorMixin

IMAGE_TOKEN = "<|image_pad|>"


class ImageOnlyQwenVLProcessor(Qwen2VLProcessor):
    """`Qwen2VLProcessor` with an image processor and a tokenizer only (no video processor)."""

    def __init__(
        self, image_processor: Any = None, tokenizer: Any = None, chat_template: Any = None, **kwargs: Any
    ):
        self.image_token = getattr(tokenizer, "image_token", None) or IMAGE_TOKEN
        self.video_token = "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = None  # never used: the edit pipelines pass no video
        # ProcessorMixin's own __init__ (Qwen2VLProcessor's would check for a video processor).
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)


def image_only_processor(tokenizer: Any, *, min_pixels: int, max_pixels: int) -> ImageOnlyQwenVLProcessor:
    """A processor for `tokenizer` whose image processor resizes into [min_pixels, max_pixels]."""
    image_processor = Qwen2VLImageProcessorPil(min_pixels=min_pixels, max_pixels=max_pixels)
    return ImageOnlyQwenVLProcessor(image_processor=image_processor, tokenizer=tokenizer)


def load_processor(weights: str, *, local_files_only: bool) -> ImageOnlyQwenVLProcessor:
    """The processor of a hub id or local folder (its `processor/` subfolder), PIL image side."""
    kwargs: dict[str, Any] = {"subfolder": "processor", "local_files_only": local_files_only}
    image_processor = Qwen2VLImageProcessorPil.from_pretrained(weights, **kwargs)
    try:
        tokenizer = AutoTokenizer.from_pretrained(weights, **kwargs)
    except OSError:  # a processor folder without tokenizer files: the pipeline's own (same vocabulary)
        tokenizer = AutoTokenizer.from_pretrained(
            weights, subfolder="tokenizer", local_files_only=local_files_only
        )
    return ImageOnlyQwenVLProcessor(image_processor=image_processor, tokenizer=tokenizer)
