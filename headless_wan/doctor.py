"""Can this machine do the worker's job? `python -m headless_wan doctor`, and the worker's start-up.

Each check returns one `Check` (OK / WARN / FAIL and a one-line detail). FAIL means the worker could
not do its job (no encoder, nowhere to write, no queue); WARN means it can, but worse than intended
(no GPU with device=auto). Details never contain a DSN password or a key: queue backends describe
their target themselves and their error messages are scrubbed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from headless_wan.config import Settings

if TYPE_CHECKING:  # the engine (and with it torch) only when the GPU is checked
    from headless_wan.engine import Engine, FitnessReport

TOOL_TIMEOUT_S = 15


class Level(str, Enum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    name: str
    level: Level
    detail: str


def run_checks(settings: Settings, engine: Engine | None, *, queue: bool = True) -> list[Check]:
    """Every check, in report order. `engine=None` skips the GPU (torch-importing) check."""
    checks = [gpu_check(settings, engine)] if engine is not None else []
    checks += [tool_check("ffmpeg", need_encoder="libx264"), tool_check("ffprobe")]
    checks += disk_checks(settings)
    if queue:
        checks.append(_guarded("queue", lambda: queue_check(settings)))
    checks.append(_guarded("storage", lambda: storage_check(settings)))
    return checks


def failed(checks: Iterable[Check]) -> bool:
    return any(c.level is Level.FAIL for c in checks)


def render(checks: list[Check]) -> str:
    width = max((len(c.name) for c in checks), default=0)
    lines = [f"{c.level.value:<4}  {c.name:<{width}}  {c.detail}" for c in checks]
    fails = sum(c.level is Level.FAIL for c in checks)
    warns = sum(c.level is Level.WARN for c in checks)
    verdict = "the worker cannot run here" if fails else "the worker can run here"
    lines.append(f"doctor: {fails} failure(s), {warns} warning(s): {verdict}")
    return "\n".join(lines)


# --- GPU ----------------------------------------------------------------------------------------


def gpu_check(settings: Settings, engine: Engine) -> Check:
    try:
        report = engine.fitness(settings.model_override)
    except Exception as exc:  # an unknown preset, a broken torch install
        return Check("gpu", Level.FAIL, f"cannot check the device: {exc}")
    summary = fitness_summary(report)
    if report.device.startswith("cuda"):
        if report.total_vram_mb is None:
            return Check("gpu", Level.FAIL, summary)
        # VRAM held by someone else may be freed, and other presets may fit: the worker can run.
        return Check("gpu", Level.OK if report.fits else Level.WARN, summary)
    if report.problems:
        return Check("gpu", Level.FAIL, summary)
    cpu = f"no CUDA GPU in use (device={settings.device}); generation on the CPU is practical only for tiny presets"
    return Check("gpu", Level.WARN, f"{cpu}: {summary}")


def fitness_summary(report: FitnessReport) -> str:
    free = (
        f"{report.free_vram_mb:.0f} of {report.total_vram_mb:.0f} MiB free"
        if report.total_vram_mb
        else "no VRAM figures"
    )
    needed = f", needs about {report.needed_vram_mb:.0f} MiB" if report.needed_vram_mb else ""
    verdict = "fits" if report.fits else "; ".join(report.problems)
    return (
        f"device {report.device} ({report.device_name}), {free}; "
        f"preset {report.preset} with profile {report.memory_profile}{needed}: {verdict}"
    )


# --- FFmpeg -------------------------------------------------------------------------------------


def tool_check(tool: str, *, need_encoder: str | None = None) -> Check:
    path = shutil.which(tool)
    if path is None:
        return Check(tool, Level.FAIL, f"{tool} not found on PATH (install the distribution's ffmpeg)")
    try:
        # "ffmpeg version 5.1.6-0+deb12u1 Copyright (c) ...": the version is what matters
        version = _run(path, "-version").splitlines()[0].split(" Copyright")[0]
        if need_encoder and f" {need_encoder} " not in _run(path, "-encoders"):
            return Check(tool, Level.FAIL, f"{version}: the {need_encoder} encoder is missing")
    except (OSError, subprocess.SubprocessError, IndexError) as exc:
        return Check(tool, Level.FAIL, f"{path} does not run: {exc}")
    extra = f", {need_encoder} available" if need_encoder else ""
    return Check(tool, Level.OK, f"{version.removeprefix(tool + ' ').strip()} ({path}){extra}")


def _run(path: str, *args: str) -> str:
    done = subprocess.run(
        [path, "-hide_banner", *args], capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=True
    )
    return done.stdout


# --- disk ---------------------------------------------------------------------------------------


def model_cache_dir() -> Path:
    """Where Hugging Face keeps model weights, as huggingface_hub itself resolves it (its own
    environment variables, read by that library at its edge, not here)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def disk_checks(settings: Settings) -> list[Check]:
    dirs = {
        "work dir": settings.work_dir,
        "model cache": model_cache_dir(),
        "lora cache": settings.lora_cache_dir,
    }
    if settings.storage == "local":
        dirs["output dir"] = settings.output_dir
    checks, seen = [], set()
    for label, path in dirs.items():
        resolved = Path(path).expanduser().absolute()
        if resolved not in seen:
            seen.add(resolved)
            checks.append(_disk_check(label, resolved, settings.min_free_disk_gb))
    return checks


def _disk_check(label: str, path: Path, min_free_gb: float) -> Check:
    existing = _nearest_existing(path)
    free_gb = shutil.disk_usage(existing).free / 2**30
    detail = f"{path}: {free_gb:.1f} GiB free (minimum {min_free_gb:g})"
    return Check(f"disk: {label}", Level.OK if free_gb >= min_free_gb else Level.FAIL, detail)


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


# --- queue and storage --------------------------------------------------------------------------


def queue_check(settings: Settings) -> Check:
    from headless_wan import wiring

    if settings.queue == "postgres":
        return Check("queue", Level.OK, f"postgres: {wiring.build_postgres_queue(settings).check()}")
    if settings.queue == "reigh":
        reigh = wiring.build_reigh_queue(settings)
        try:
            return Check("queue", Level.OK, f"reigh {settings.supabase_url}: {reigh.check_access()}")  # type: ignore[attr-defined]
        finally:
            reigh.close()
    return _sqlite_check(settings.sqlite_path)


def _sqlite_check(path: Path) -> Check:
    from headless_wan.queue.sqlite import SqliteQueue

    if not path.exists():
        parent = _nearest_existing(path.parent.absolute())
        if not os.access(parent, os.W_OK):
            return Check("queue", Level.FAIL, f"sqlite {path}: missing, and {parent} is not writable")
        return Check("queue", Level.OK, f"sqlite {path}: will be created on first use")
    queue = SqliteQueue(path)
    try:
        queue.open()  # creates or upgrades the schema: the worker would do the same
        queue.list_tasks(limit=1)
    finally:
        queue.close()
    return Check("queue", Level.OK, f"sqlite {path}: schema readable")


def storage_check(settings: Settings) -> Check:
    from headless_wan.wiring import build_storage

    if settings.storage == "s3":
        return Check("storage", Level.OK, f"s3: {build_storage(settings).check()}")  # type: ignore[attr-defined]
    out = Path(settings.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=out, prefix=".doctor-"):
        pass
    return Check("storage", Level.OK, f"local {out}: writable")


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    """A check that raised is a FAIL with the (already secret-free) error message."""
    try:
        return check()
    except Exception as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        return Check(name, Level.FAIL, message[:400])
