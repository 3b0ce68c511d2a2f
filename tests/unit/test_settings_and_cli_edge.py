"""Settings come from the environment once; Reigh's variable names work; `.env.example` documents
every setting; the CLI and queue layers start without importing torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from headless_wan.config import Settings

REPO = Path(__file__).resolve().parents[2]


def test_reigh_deployment_names_work_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPABASE_URL", "https://example.supabase.co")
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", "service-secret")
    monkeypatch.setenv("WORKER_ID", "gpu-7")
    settings = Settings()
    assert settings.supabase_url == "https://example.supabase.co"
    assert settings.worker_id == "gpu-7"
    assert settings.supabase_service_role_key is not None
    assert settings.supabase_service_role_key.get_secret_value() == "service-secret"
    assert "service-secret" not in repr(settings)


def test_hw_prefixed_variables_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text('HW_SQLITE_PATH=/data/q.sqlite3\nHW_TASK_TYPES=["echo"]\n')
    monkeypatch.setenv("HW_OUTPUT_DIR", "/data/out")
    monkeypatch.setenv("HW_MODEL_OVERRIDE", "tiny")
    settings = Settings()
    assert settings.sqlite_path == Path("/data/q.sqlite3")
    assert settings.output_dir == Path("/data/out")
    assert settings.task_types == ("echo",)
    assert settings.model_override == "tiny"


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_ID", "from-env")
    assert Settings(worker_id="from-flag").worker_id == "from-flag"


def test_inconsistent_intervals_are_rejected() -> None:
    with pytest.raises(ValidationError, match="heartbeat_interval_s"):
        Settings(heartbeat_interval_s=90, lease_s=60)


def test_env_example_documents_every_setting() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_env_example.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    text = (REPO / ".env.example").read_text()
    for name in Settings.model_fields:
        assert name.upper() in text, f"{name} is not documented in .env.example"


def test_configuration_reference_is_up_to_date() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_config_docs.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    text = (REPO / "docs" / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert name.upper() in text, f"{name} is not in docs/configuration.md"


@pytest.mark.parametrize(
    "code",
    [
        "import headless_wan.cli, headless_wan.queue.sqlite, headless_wan.queue.memory, headless_wan.worker.loop",
        "import headless_wan.wiring, headless_wan.engine, headless_wan.handlers.generate",
        "from headless_wan.cli import main; main(['--help'])",
        "from headless_wan.cli import main; main(['worker', '--help'])",
        "import headless_wan.commands, headless_wan.doctor, headless_wan.worker.health, headless_wan.healthcheck",
    ],
)
def test_start_up_paths_never_import_torch(code: str) -> None:
    probe = f"import sys\ntry:\n    {code}\nexcept SystemExit:\n    pass\nassert 'torch' not in sys.modules, 'torch imported'\nassert 'diffusers' not in sys.modules\nassert 'prometheus_client' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
