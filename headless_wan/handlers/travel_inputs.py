"""Travel handler configuration and input resolution (URLs, local paths, other tasks' outputs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from headless_wan.domain.tasks import Task, TaskStatus
from headless_wan.errors import HeadlessWanError, InputUnavailable, TransientError
from headless_wan.handlers.base import TaskContext, TaskLookup
from headless_wan.media.fetch import fetch, redact_url
from headless_wan.media.guide import fit_image
from headless_wan.media.images import DEFAULT_MAX_INPUT_PIXELS
from headless_wan.media.video_io import load_image


@dataclass(frozen=True)
class TravelConfig:
    """What the travel handlers may do with inputs; built once from Settings by the composition root.

    - `allow_local_inputs`: task payloads may name local files (the `run` command, embedded queue demos).
    - `download_max_mb` / `download_timeout_s`: limits for every http(s) download (images, segments, LoRAs).
    - `trust_queue_outputs`: an `output_location` read from the queue itself (a predecessor's or a
      segment's) may be a local path even when `allow_local_inputs` is off. Our embedded backends store
      outputs on local disk, and those locations are written by workers, not by task authors.
    - `max_input_pixels`, `max_segments`, `max_frames`: caps on what one task may ask for (an image's
      size, a run's fan-out, its stitched length), so a payload cannot make the queue or the box do
      work nobody meant to ask for.
    """

    allow_local_inputs: bool = False
    download_max_mb: float = 500.0
    download_timeout_s: float = 120.0
    trust_queue_outputs: bool = True
    max_input_pixels: int = DEFAULT_MAX_INPUT_PIXELS
    max_segments: int = 64
    max_frames: int = 4000


def is_url(source: str) -> bool:
    return urlsplit(source.strip()).scheme.lower() in ("http", "https")


def shown(source: str) -> str:
    """A source safe for messages: URLs without tokens, local paths by name only."""
    return redact_url(source) if is_url(source) else Path(source).name


def fetch_input(source: str, dest_dir: Path, config: TravelConfig, *, field: str, filename: str) -> Path:
    """Download (http/https) or, when allowed, copy a task input into `dest_dir`.

    Errors keep their class (InvalidTaskParams, InputUnavailable, TransientError) and name `field`.
    """
    try:
        return fetch(
            source,
            dest_dir,
            max_mb=config.download_max_mb,
            timeout_s=config.download_timeout_s,
            allow_local=config.allow_local_inputs,
            filename=filename,
        )
    except HeadlessWanError as exc:
        raise type(exc)(f"{field}: {exc}") from None


def fetch_queue_output(
    location: str, dest_dir: Path, config: TravelConfig, *, what: str, filename: str
) -> Path:
    """The file behind another task's `output_location`: downloaded if a URL; read in place if local
    and trusted (see `TravelConfig.trust_queue_outputs`)."""
    if is_url(location) or not config.trust_queue_outputs:
        return fetch_input(location, dest_dir, config, field=what, filename=filename)
    path = Path(location)
    if not path.is_file():
        raise InputUnavailable(f"{what}: output file {path.name} does not exist")
    return path


def load_anchor(
    source: str, dest_dir: Path, config: TravelConfig, width: int, height: int, *, field: str, filename: str
) -> np.ndarray:
    """An anchor image fetched, decoded to RGB and resized to exactly width x height."""
    path = fetch_input(source, dest_dir, config, field=field, filename=filename)
    try:
        image = load_image(path, config.max_input_pixels)
    except HeadlessWanError as exc:
        raise InputUnavailable(f"{field}: {exc}") from None
    return fit_image(image, width, height)


def completed_dependency(ctx: TaskContext, task_id: str, *, what: str) -> Task:
    """A dependency that must be Complete with an output; TransientError (retry later) otherwise."""
    lookup = require_lookup(ctx)
    task = lookup.get(task_id)
    if task is None:
        raise TransientError(f"{what} {task_id} is not visible in the queue yet")
    if task.status is not TaskStatus.COMPLETE:
        raise TransientError(f"{what} {task_id} is {task.status.value}, not Complete yet")
    if not task.output_location:
        raise TransientError(f"{what} {task_id} is Complete but has no output yet")
    return task


def require_lookup(ctx: TaskContext) -> TaskLookup:
    if ctx.lookup is None:
        raise TransientError("this worker cannot look up other tasks (no queue lookup available)")
    return ctx.lookup
