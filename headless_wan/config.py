"""Settings, read once at the CLI edge (environment variables and `.env`) and passed down.

Every field is documented in `.env.example`, which `scripts/gen_env_example.py` writes from this
model (a test fails when it is out of date). Durations end in `_s`, sizes in `_mb`.
The Reigh deployment names (`SUPABASE_URL`, `SUPABASE_SERVICE_ROLE_KEY`, `WORKER_ID`) work unchanged.
"""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

QueueBackend = Literal["sqlite", "reigh", "postgres"]


def _env(name: str) -> AliasChoices:
    """Accept `HW_<NAME>` and, for names shared with the Reigh worker, the bare name."""
    return AliasChoices(f"HW_{name}", name)


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HW_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        frozen=True,
    )

    # --- queue -----------------------------------------------------------------------------
    queue: QueueBackend = Field(
        "sqlite", description="Queue backend: sqlite (embedded default), reigh, postgres."
    )
    sqlite_path: Path = Field(
        Path("var/queue.sqlite3"), description="SQLite queue file (created on first use)."
    )
    supabase_url: str | None = Field(
        None, validation_alias=_env("SUPABASE_URL"), description="Reigh/Supabase project URL (reigh queue)."
    )
    supabase_service_role_key: SecretStr | None = Field(
        None,
        validation_alias=_env("SUPABASE_SERVICE_ROLE_KEY"),
        description="Reigh service-role key (fleet workers). Never logged.",
    )
    task_types: tuple[str, ...] = Field(
        (), description="Only claim these task types (JSON list); empty = every type this worker runs."
    )
    max_attempts: int = Field(
        3, ge=1, description="Claims a task may use up before a dead worker's task is Failed."
    )
    lease_s: float = Field(
        60.0, gt=0, description="How long a claim stays valid without a heartbeat (embedded queues)."
    )

    # --- worker ----------------------------------------------------------------------------
    worker_id: str = Field(
        default_factory=default_worker_id,
        validation_alias=_env("WORKER_ID"),
        description="This worker's id (default: hostname plus a random suffix).",
    )
    heartbeat_interval_s: float = Field(
        15.0, gt=0, description="Heartbeat period; must be well under lease_s."
    )
    poll_min_s: float = Field(0.5, gt=0, description="Idle poll delay right after work was found.")
    poll_max_s: float = Field(
        10.0, gt=0, description="Longest idle poll delay (idle polling backs off to it)."
    )
    shutdown_grace_s: float = Field(
        30.0, ge=0, description="On SIGTERM, how long the current task may run on before it is released."
    )
    output_dir: Path = Field(
        Path("var/outputs"), description="Where finished outputs are stored (local storage)."
    )
    work_dir: Path = Field(Path("var/work"), description="Scratch space; one folder per running task.")
    keep_failed_workdirs: bool = Field(
        False, description="Keep a failed task's scratch folder for debugging."
    )

    cancel_timeout_s: float = Field(
        15.0,
        gt=0,
        description="After a cancel, how long a task may take to stop before the worker releases it and exits.",
    )
    progress_interval_s: float = Field(
        2.0, gt=0, description="At most one progress log line per task this often."
    )
    handler_plugins: tuple[str, ...] = Field(
        (),
        description='Extra task handlers, a JSON list of "module:factory" (factory() returns a list of handlers).',
    )

    # --- task inputs -----------------------------------------------------------------------
    download_max_mb: float = Field(
        500.0, gt=0, description="Largest input file (image, video, LoRA URL) a task may download."
    )
    download_timeout_s: float = Field(
        120.0, gt=0, description="Time limit for one input download, retries included."
    )
    allow_local_inputs: bool | None = Field(
        None,
        description="Let tasks name local file paths as inputs (default: only with the embedded sqlite queue and `run`).",
    )

    # --- generation ------------------------------------------------------------------------
    model_override: str | None = Field(
        None, description="Force every generation onto this model preset (e.g. tiny for CPU smoke runs)."
    )

    # --- logging ---------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    log_format: Literal["text", "json"] = Field("text", description="text for people, json for log shippers.")

    @model_validator(mode="after")
    def _check_intervals(self) -> Settings:
        if self.heartbeat_interval_s >= self.lease_s:
            raise ValueError(
                f"heartbeat_interval_s ({self.heartbeat_interval_s}) must be shorter than lease_s ({self.lease_s})"
            )
        if self.poll_min_s > self.poll_max_s:
            raise ValueError(f"poll_min_s ({self.poll_min_s}) must not exceed poll_max_s ({self.poll_max_s})")
        return self
