#!/usr/bin/env bash
# Idempotent set-up: FFmpeg from the distribution, a virtualenv in .venv, torch first, then the
# package with its test tools. Re-running it does only what is missing.
#
#   TORCH_SPEC   what to install for torch (default: torch==2.13.0; the CPU build is on disk on the
#                development machines; on a GPU box use e.g. "torch==2.13.0 --index-url <CUDA index>")
#   PYTHON       the interpreter that creates the venv (default: python3)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
    echo "setup: installing ffmpeg" >&2
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq ffmpeg >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv" >&2
    "${PYTHON:-python3}" -m venv .venv
fi

# torch goes in before anything that depends on it, or pip may pull a multi-GB CUDA build.
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
    echo "setup: installing ${TORCH_SPEC:-torch==2.13.0}" >&2
    # shellcheck disable=SC2086
    .venv/bin/pip install -q --disable-pip-version-check ${TORCH_SPEC:-torch==2.13.0} 2>&1 | grep -v "is ignored" >&2 || true
    .venv/bin/python -c "import torch" 2>/dev/null || { echo "setup: torch failed to install" >&2; exit 1; }
fi

# Reinstall the package only when its declared dependencies changed.
stamp=".venv/.headless_wan-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "setup: installing headless_wan and its dependencies" >&2
    .venv/bin/pip install -q --disable-pip-version-check -e ".[dev]" 2>&1 | grep -v "is ignored" >&2 || true
    .venv/bin/python -c "import headless_wan.cli, diffusers" || { echo "setup: install failed" >&2; exit 1; }
    rm -f .venv/.headless_wan-*
    touch "$stamp"
fi
