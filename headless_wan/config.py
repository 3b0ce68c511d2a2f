"""Settings, read once at the CLI edge (environment variables and `.env`) and passed down.

Every field is documented in `.env.example`, which `scripts/gen_env_example.py` writes from this
model (a test fails when it is out of date). Durations end in `_s`, sizes in `_mb`.
The Reigh deployment names (`SUPABASE_URL`, `SUPABASE_SERVICE_ROLE_KEY`, `WORKER_ID`) work unchanged.
"""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

QueueBackend = Literal["sqlite", "reigh", "postgres"]
# Tasks with no GPU work get short limits, so a hung download or planner does not hold a worker.
_QWEN_IMAGE_TYPES = ("qwen_image", "qwen_image_2512", "qwen_image_style", "qwen_image_edit", "image_inpaint",
                     "annotated_image_edit")  # fmt: skip
# One still image: Z-Image Turbo loads and runs in minutes; a 20B Qwen model's cold load from the hub dominates.
DEFAULT_TASK_TIMEOUTS = {
    "travel_orchestrator": 600.0,
    "image-generation": 1800.0,
    "wan_2_2_t2i": 1800.0,
    "z_image_turbo": 900.0,
    "z_image_turbo_i2i": 900.0,
    **dict.fromkeys(_QWEN_IMAGE_TYPES, 1800.0),
}


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

    # --- reigh -----------------------------------------------------------------------------
    reigh_pat: SecretStr | None = Field(
        None,
        description="Reigh personal access token, for a user's local worker when no service-role key is set. "
        "Best effort: no heartbeat, model affinity, claim verification or recovery. Never logged.",
    )
    reigh_contract: Literal["auto", "2026-01", "2026-04"] = Field(
        "auto",
        description="Which Reigh edge-function contract to speak: 2026-01 (banodoco/Reigh), 2026-04 "
        "(banodoco/reigh-app) or auto (learnt once per process from the server's answers, and logged).",
    )
    reigh_max_task_wait_minutes: int | None = Field(
        None,
        gt=0,
        description="2026-04 claims with same_model_only: minutes a task may wait before model affinity "
        "gives way (claim-next-task max_task_wait_minutes; the server's default is 5).",
    )
    reigh_function_urls: dict[str, str] = Field(
        default_factory=dict,
        description='Per-function URL overrides, JSON {"claim-next-task": "https://..."}; '
        "default <SUPABASE_URL>/functions/v1/<name>.",
    )
    reigh_same_model_only: bool = Field(
        False,
        description="Only claim tasks for the model this worker has loaded (claim-next-task same_model_only).",
    )
    reigh_base64_max_mb: float = Field(
        2.0,
        ge=0,
        description="Outputs smaller than this go inline (base64); larger ones by signed upload URL.",
    )
    reigh_retry_attempts: int = Field(
        3, ge=1, description="Tries per Reigh call on 502/503/504, timeouts and connection errors."
    )
    reigh_retry_backoff_s: float = Field(
        1.0, gt=0, description="First retry delay (doubles each try, with jitter)."
    )
    reigh_retry_backoff_max_s: float = Field(10.0, gt=0, description="Longest retry delay.")
    reigh_complete_attempts: int = Field(
        3,
        ge=1,
        description="complete_task calls per completion, each after checking the task is still In Progress.",
    )
    reigh_timeout_claim_s: float = Field(15.0, gt=0, description="Timeout of claim-next-task.")
    reigh_timeout_update_status_s: float = Field(30.0, gt=0, description="Timeout of update-task-status.")
    reigh_timeout_complete_s: float = Field(60.0, gt=0, description="Timeout of complete_task.")
    reigh_timeout_upload_url_s: float = Field(30.0, gt=0, description="Timeout of generate-upload-url.")
    reigh_timeout_put_s: float = Field(600.0, gt=0, description="Timeout of the output file's upload (PUT).")
    reigh_timeout_thumbnail_put_s: float = Field(
        60.0, gt=0, description="Timeout of the thumbnail's upload (PUT)."
    )
    reigh_timeout_create_task_s: float = Field(
        45.0, gt=0, description="Timeout of create-task (child tasks)."
    )
    reigh_timeout_get_s: float = Field(
        15.0, gt=0, description="Timeout of the get-* functions and PostgREST reads (status, verification)."
    )
    reigh_timeout_worker_model_s: float = Field(5.0, gt=0, description="Timeout of update-worker-model.")
    reigh_timeout_heartbeat_s: float = Field(10.0, gt=0, description="Timeout of the heartbeat RPC.")

    # --- fleet -----------------------------------------------------------------------------
    database_url: SecretStr | None = Field(
        None,
        validation_alias=_env("DATABASE_URL"),
        description="PostgreSQL DSN for the postgres queue (postgresql://user:pass@host/db). Never logged.",
    )
    pg_schema: str = Field(
        "headless_wan", description="PostgreSQL schema holding the queue tables (created by `migrate`)."
    )
    pg_pool_min: int = Field(1, ge=1, description="PostgreSQL connections each queue client keeps open.")
    pg_pool_max: int = Field(4, ge=1, description="Most PostgreSQL connections one queue client may open.")
    notify: bool = Field(
        True, description="Wake idle workers with PostgreSQL LISTEN/NOTIFY (polling stays the fallback)."
    )
    storage: Literal["local", "s3"] = Field(
        "local", description="Where outputs go: local (output_dir) or s3 (a bucket every machine can read)."
    )
    s3_bucket: str | None = Field(None, description="S3 bucket for outputs (s3 storage).")
    s3_prefix: str = Field("", description="Key prefix inside the bucket, e.g. fleet-a/.")
    s3_endpoint_url: str | None = Field(
        None, description="S3-compatible endpoint (MinIO, R2, ...); unset = AWS."
    )
    s3_region: str | None = Field(None, description="S3 region (default us-east-1).")
    s3_access_key_id: str | None = Field(
        None, description="S3 access key id; unset = boto3's own chain (AWS_* variables, profile, role)."
    )
    s3_secret_access_key: SecretStr | None = Field(None, description="S3 secret key. Never logged.")
    s3_public_base_url: str | None = Field(
        None,
        description="Public URL of the bucket (or its CDN); outputs are recorded as <this>/<key>. "
        "Recommended; unset = presigned URLs, which stop working after s3_url_expiry_s.",
    )
    s3_url_expiry_s: int = Field(
        7 * 24 * 3600,
        ge=1,
        le=7 * 24 * 3600,
        description="Lifetime of presigned output URLs (7 days at most); a task's recorded "
        "output_location is dead after it. Logs show them without the signature.",
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
        description="After a cancel, how long a task may take to stop before the worker kills its "
        "executor process (in-process: releases the task and exits).",
    )
    progress_interval_s: float = Field(
        2.0, gt=0, description="At most one progress log line per task this often."
    )
    executor: bool = Field(
        True,
        description="Run handlers in a child executor process the worker can kill and replace "
        "(false: in the worker process, without the stall/timeout watchdog).",
    )
    task_stall_s: float = Field(
        900.0,
        ge=0,
        description="Kill the executor when a task sends no progress event for this long (0 = never).",
    )
    task_timeout_s: float = Field(
        7200.0, ge=0, description="Kill the executor when a task runs longer than this (0 = no limit)."
    )
    task_timeouts: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_TASK_TIMEOUTS),
        description="Per task type time limits overriding task_timeout_s, JSON; default "
        + json.dumps({name: int(limit) for name, limit in DEFAULT_TASK_TIMEOUTS.items()})
        + ".",
    )
    finish_budget_s: float = Field(
        300.0,
        gt=0,
        description="Total time publishing a result and writing its status may take, retries included; "
        "past it the outputs stay on disk and the task is finished later from its manifest.",
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
    input_allow_hosts: tuple[str, ...] = Field(
        (),
        description="Hosts, addresses or CIDRs that task input URLs may reach although they are not public "
        '(JSON list, e.g. ["127.0.0.1", "minio.internal", "10.0.0.0/8"]). Loopback, private, link-local '
        "and other non-public addresses are refused otherwise; the queue's own storage host "
        "(SUPABASE_URL, S3 endpoint) is always allowed.",
    )
    max_input_pixels: int = Field(
        50_000_000,
        ge=1,
        description="Largest input image (width x height), checked from its header before decoding.",
    )

    # --- limits ----------------------------------------------------------------------------
    max_task_json_kb: int = Field(
        2048, ge=1, description="Largest task payload (params as JSON), at submit/run and on claim."
    )
    max_task_json_depth: int = Field(
        64, ge=2, description="Deepest nesting of a task payload, at submit/run and on claim."
    )
    max_travel_segments: int = Field(
        64, ge=1, description="Most segments one travel run may fan out to (images - 1)."
    )
    max_task_frames: int = Field(
        4000, ge=1, description="Most frames one task may produce (a travel run's stitched length)."
    )
    max_join_clips: int = Field(
        32, ge=2, description="Most clips one join_clips run may join (each join is one VACE generation)."
    )

    # --- generation ------------------------------------------------------------------------
    startup_check: bool = Field(
        True,
        description="At worker start, report the device, free VRAM and whether the preset fits (imports torch).",
    )
    model_override: str | None = Field(
        None, description="Force every generation onto this model preset (e.g. tiny for CPU smoke runs)."
    )
    device: str = Field(
        "auto", description="Generation device: auto (CUDA when available, else CPU), cpu, cuda or cuda:N."
    )
    memory_profile: str | None = Field(
        None,
        description="Memory profile for every preset (resident, fp8, fp8_scaled, model_offload, group_offload, sequential); "
        "unset = each preset's own.",
    )
    attention_backend: str = Field(
        "auto",
        validation_alias=AliasChoices("HW_ATTENTION_BACKEND", "HW_ATTENTION"),
        description="diffusers attention backend, fixed for the process: auto (the fastest installed one "
        "that agrees with native on a start-up probe), native, or a diffusers backend name (sage, _flash_3, "
        "flash, _native_cudnn, ...), which falls back to native when it fails the probe. "
        "The old name HW_ATTENTION_BACKEND is still read.",
    )
    compile: bool = Field(
        False,
        description="Regional torch.compile of the experts' repeated blocks (compile_repeated_blocks), warmed "
        "at load at the first task's shape (another shape compiles once); constant LoRAs are fused and "
        "per-step ones tensor-scaled, so phase switches do not recompile.",
    )
    compile_cache_dir: Path | None = Field(
        None,
        description="Inductor cache folder for compiled kernels (put it on the model volume); unset = torch's.",
    )
    presets_file: Path | None = Field(
        None, description="Model presets TOML (default: configs/presets.toml of this checkout)."
    )
    hf_offline: bool = Field(
        True,
        description="Load model weights only from local folders or the Hugging Face cache (no downloads).",
    )
    lora_cache_dir: Path = Field(
        Path("var/loras"), description="Where LoRAs downloaded by URL are kept (one file per URL)."
    )
    lora_max_mb: float = Field(4096.0, gt=0, description="Largest LoRA file a task may download.")
    lora_timeout_s: float = Field(
        900.0, gt=0, description="Time limit for one LoRA download, retries included."
    )

    # --- operations ------------------------------------------------------------------------
    metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Serve /healthz and Prometheus /metrics on this port (worker only; 0 = any free port, "
        "logged); unset = no server.",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="Address the health/metrics server binds (the Docker image sets 0.0.0.0).",
    )
    min_free_disk_gb: float = Field(
        5.0,
        ge=0,
        description="doctor and worker start fail when the work, output or model cache disk has less free space.",
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
