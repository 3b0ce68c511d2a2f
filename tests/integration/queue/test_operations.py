"""Operations over real processes: `doctor` on this machine, `/healthz` and `/metrics` over HTTP
while a worker process runs tasks, and the worker's JSON log lines."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import wait_for
from tests.integration.queue.conftest import Site
from tests.postgres_support import fresh_schema, require_postgres

pytestmark = pytest.mark.slow


def doctor_lines(result: object) -> dict[str, str]:
    """check name → its report line."""
    lines = {}
    for line in result.stdout.splitlines():  # type: ignore[attr-defined]
        match = re.match(r"^(OK|WARN|FAIL)\s+(\S+(?: \S+)*?)\s{2,}", line)
        if match:
            lines[match.group(2)] = line
    return lines


def test_doctor_reports_this_machine(site: Site) -> None:
    result = site.cli("doctor")
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = doctor_lines(result)
    assert {"gpu", "ffmpeg", "ffprobe", "disk: work dir", "queue", "storage"} <= set(lines)
    gpu = lines["gpu"]
    if gpu.startswith("WARN"):  # the development machines have no GPU: said clearly, not fatal
        assert "no CUDA GPU in use (device=auto)" in gpu and "device cpu" in gpu
    assert lines["ffmpeg"].startswith("OK") and "libx264 available" in lines["ffmpeg"]
    assert lines["queue"].startswith("OK") and "sqlite" in lines["queue"]
    assert "0 failure(s)" in result.stdout.splitlines()[-1]


def test_doctor_fails_without_a_gpu_when_cuda_is_required(site: Site) -> None:
    result = site.cli("doctor", HW_DEVICE="cuda")
    gpu = doctor_lines(result)["gpu"]
    if gpu.startswith("OK"):
        pytest.skip("this machine has a usable CUDA GPU")
    assert gpu.startswith("FAIL") and "CUDA is not available" in gpu
    assert result.returncode == 1


def test_doctor_fails_without_ffmpeg_on_the_path(site: Site, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = site.cli("doctor", PATH=str(empty))
    lines = doctor_lines(result)
    assert lines["ffmpeg"].startswith("FAIL") and "not found on PATH" in lines["ffmpeg"]
    assert lines["ffprobe"].startswith("FAIL")
    assert result.returncode == 1


def test_doctor_fails_when_outputs_cannot_be_written(site: Site, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = site.cli("doctor", HW_OUTPUT_DIR=str(blocker / "outputs"))
    assert doctor_lines(result)["storage"].startswith("FAIL")
    assert result.returncode == 1


def test_doctor_fails_below_the_free_disk_minimum(site: Site) -> None:
    result = site.cli("doctor", HW_MIN_FREE_DISK_GB="100000000")
    assert doctor_lines(result)["disk: work dir"].startswith("FAIL")
    assert result.returncode == 1


def test_doctor_fails_on_an_unreachable_postgres_without_showing_the_password(site: Site) -> None:
    result = site.cli(
        "doctor", "--queue", "postgres", DATABASE_URL="postgresql://fleet:hunter2-secret@127.0.0.1:1/queue"
    )
    queue = doctor_lines(result)["queue"]
    assert queue.startswith("FAIL") and "Cannot reach the PostgreSQL queue" in queue
    assert "hunter2" not in result.stdout + result.stderr
    assert result.returncode == 1


def test_doctor_checks_the_postgres_schema_is_migrated(site: Site) -> None:
    dsn = require_postgres()
    with fresh_schema() as schema:
        before = site.cli("doctor", "--queue", "postgres", DATABASE_URL=dsn, HW_PG_SCHEMA=schema)
        assert doctor_lines(before)["queue"].startswith("FAIL") and "migrate" in before.stdout
        assert (
            site.cli("migrate", "--queue", "postgres", DATABASE_URL=dsn, HW_PG_SCHEMA=schema).returncode == 0
        )
        after = site.cli("doctor", "--queue", "postgres", DATABASE_URL=dsn, HW_PG_SCHEMA=schema)
        assert doctor_lines(after)["queue"].startswith("OK") and "up to date" in after.stdout


def test_worker_start_refuses_to_run_when_a_check_fails(site: Site, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = site.cli("worker", "--drain", HW_OUTPUT_DIR=str(blocker / "out"))
    assert result.returncode == 2
    checks = [json.loads(line) for line in result.stderr.splitlines() if '"startup_check"' in line]
    assert any(c["level"] == "ERROR" and c["message"].startswith("storage FAIL") for c in checks)


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        series, _, rest = key.partition("{")
        got = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
        if series == name and got == wanted:
            return float(value)
    return 0.0


def test_health_and_metrics_over_http_while_a_worker_runs_tasks(site: Site) -> None:
    worker = site.start_worker("--metrics-port", "0")
    found = wait_for(
        lambda: re.search(r"health and metrics on http://127\.0\.0\.1:(\d+)", worker.output()),
        what="the metrics port in the worker log",
    )
    base = f"http://127.0.0.1:{found.group(1)}"
    wait_for(lambda: json.loads(http_get(f"{base}/healthz")[1])["state"] == "ready", what="ready")

    def scraped() -> str:
        status, body = http_get(f"{base}/metrics")
        assert status == 200
        return body.decode()

    assert metric(scraped(), "hw_tasks_total", task_type="echo", outcome="complete") == 0
    ok = [site.submit("echo", {"message": f"m{i}"}) for i in range(2)]
    bad = site.submit("boom", {})
    wait_for(
        lambda: all(site.get(t).status.value in ("Complete", "Failed") for t in [*ok, bad]), what="tasks"
    )

    def after_failure() -> str | None:
        text = scraped()
        return text if metric(text, "hw_tasks_total", task_type="boom", outcome="failed") else None

    text = wait_for(after_failure, what="the failed counter")
    assert metric(text, "hw_tasks_total", task_type="echo", outcome="complete") == 2
    assert metric(text, "hw_task_duration_seconds_count", task_type="echo", outcome="complete") == 2
    assert metric(text, "hw_queue_wait_seconds_count", task_type="echo") == 2
    assert metric(text, "hw_upload_bytes_total", task_type="echo") == len("m0") + len("m1")
    assert metric(text, "hw_worker_state", state="ready") == 1
    status, body = http_get(f"{base}/healthz")
    assert status == 200 and json.loads(body)["state"] == "ready"

    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    records = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    about_tasks = [r for r in records if r.get("task_id") in (*ok, bad)]
    assert about_tasks and all(r.get("task_type") and r.get("action") for r in about_tasks)
    actions = {r["action"] for r in about_tasks}
    assert {"claim_task", "task_started", "task_succeeded", "task_fail"} <= actions


def test_docker_healthcheck_probe() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HW_")}
    probe = [sys.executable, "-m", "headless_wan.healthcheck"]
    assert (
        subprocess.run(probe, env=env, capture_output=True, timeout=30).returncode == 0
    )  # no port: nothing to ask
    closed = subprocess.run(probe, env={**env, "HW_METRICS_PORT": "1"}, capture_output=True, timeout=30)
    assert closed.returncode == 1
