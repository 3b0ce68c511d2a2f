"""The CLI forms other tooling depends on, run as real processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from headless_wan.domain.tasks import TaskStatus
from tests.integration.queue.conftest import Site

pytestmark = pytest.mark.slow


def write_task(site: Site, name: str, task: dict[str, object]) -> Path:
    path = site.root / name
    path.write_text(json.dumps(task))
    return path


def test_submit_tasks_and_drain_take_a_task_from_queued_to_complete(site: Site) -> None:
    path = write_task(site, "t.json", {"task_type": "echo", "params": {"message": "hello"}})
    submitted = site.cli("submit", str(path))
    assert submitted.returncode == 0, submitted.stderr
    task_id = submitted.stdout.strip()
    listing = site.cli("tasks", "--status", "Queued")
    assert task_id in listing.stdout and "Queued" in listing.stdout
    drained = site.cli("worker", "--drain")
    assert drained.returncode == 0, drained.stderr
    row = site.get(task_id)
    assert row.status is TaskStatus.COMPLETE
    assert Path(row.output_location or "").read_text() == "hello"
    assert Path(row.output_location or "").is_relative_to(site.root / "out")
    complete = site.cli("tasks", "--status", "complete")
    assert task_id in complete.stdout and row.output_location[:60] in complete.stdout  # type: ignore[index]
    assert site.cli("tasks", "--status", "Queued").stdout.count("\n") == 1  # header only


def test_plain_module_invocation_is_the_worker(site: Site) -> None:
    task_id = site.submit("echo", {"message": "x"})
    assert site.cli("--drain").returncode == 0
    assert site.get(task_id).status is TaskStatus.COMPLETE


def test_run_executes_children_in_process_and_prints_the_final_output(site: Site) -> None:
    path = write_task(site, "spawn.json", {"task_type": "spawn", "params": {"count": 3, "message": "seg"}})
    out_dir = site.root / "run-out"
    result = site.cli("run", str(path), "--output-dir", str(out_dir))
    assert result.returncode == 0, result.stderr
    final = Path(result.stdout.strip().splitlines()[-1])
    assert final.read_text() == "seg 2" and final.is_relative_to(out_dir)
    assert not site.db.exists()  # `run` never touches the configured queue


def test_run_exits_non_zero_with_the_reason_on_failure(site: Site) -> None:
    path = write_task(site, "bad.json", {"task_type": "echo", "params": {}})
    result = site.cli("run", str(path))
    assert result.returncode == 1
    assert "ended Failed: Invalid params for echo: message: Field required" in result.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not a readable JSON file"),
        ('{"params": {}}', "task_type: Field required"),
        ('{"task_type": "echo", "params": [1]}', "params: Input should be a valid dictionary"),
        ('{"task_type": "echo", "params": {}, "id": "abc"}', "id: Value error"),
    ],
)
def test_submit_rejects_bad_task_files_and_enqueues_nothing(site: Site, content: str, expected: str) -> None:
    path = site.root / "t.json"
    path.write_text(content)
    result = site.cli("submit", str(path))
    assert result.returncode == 2 and expected in result.stderr
    assert "Traceback" not in result.stderr
    assert site.cli("tasks").stdout.count("\n") == 1


def test_reigh_without_url_or_credential_fails_clearly(site: Site) -> None:
    result = site.cli("worker", "--queue", "reigh")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "needs SUPABASE_URL and a credential" in result.stderr


@pytest.mark.parametrize("command", [("worker", "--queue", "postgres"), ("migrate",)])
def test_postgres_without_a_database_url_fails_clearly(site: Site, command: tuple[str, ...]) -> None:
    result = site.cli(*command, DATABASE_URL="")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "needs a database: set DATABASE_URL" in result.stderr


def test_invalid_settings_are_reported_without_a_traceback(site: Site) -> None:
    result = site.cli("tasks", HW_LEASE_S="-5")
    assert result.returncode == 2
    assert "invalid settings: lease_s" in result.stderr and "Traceback" not in result.stderr


def test_worker_start_reports_the_device_and_preset_fit(site: Site) -> None:
    result = site.cli("worker", "--drain", "--model-override", "tiny", HW_STARTUP_CHECK="true")
    assert result.returncode == 0, result.stderr
    fitness = [json.loads(line) for line in result.stderr.splitlines() if '"fitness"' in line]
    assert len(fitness) == 1
    assert "device cpu" in fitness[0]["message"] and "preset tiny" in fitness[0]["message"]
    assert fitness[0]["message"].endswith("fits")
