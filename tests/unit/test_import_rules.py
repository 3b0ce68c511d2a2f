"""The layer rules of docs/architecture.md, checked on the source (every import statement, lazy ones too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "headless_wan"

# layer -> the imports it must never make (a prefix matches the module and everything under it).
# `queue.base` is the one queue module the worker may name (the QueueClient protocol).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "domain": ("headless_wan.",),
    "safety": ("headless_wan.", "httpx", "torch"),
    "queue": ("headless_wan.worker", "headless_wan.handlers", "headless_wan.engine", "headless_wan.media"),
    "worker": ("headless_wan.engine", "headless_wan.media", "headless_wan.queue.", "prometheus_client"),
    "handlers": ("headless_wan.queue",),
    "engine": ("headless_wan.media", "headless_wan.queue", "headless_wan.worker"),
}
ALLOWED = {"worker": ("headless_wan.queue.base",), "domain": ("headless_wan.domain",)}


def _imports(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from headless_wan import media` imports a module too: record both spellings.
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _matches(name: str, prefix: str) -> bool:
    return name == prefix.rstrip(".") or name.startswith(prefix if prefix.endswith(".") else prefix + ".")


def violations(layer: str, source: str) -> list[str]:
    found = []
    for name in sorted(_imports(source)):
        if any(_matches(name, ok) for ok in ALLOWED.get(layer, ())):
            continue
        if any(_matches(name, bad) for bad in FORBIDDEN[layer]):
            found.append(name)
    return found


def _layer_files(layer: str) -> list[Path]:
    single = PACKAGE / f"{layer}.py"
    return [single] if single.exists() else sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_follow_the_rules(layer: str) -> None:
    files = _layer_files(layer)
    assert files, f"no source files for layer {layer!r}"
    broken = {
        str(path.relative_to(PACKAGE)): bad
        for path in files
        if (bad := violations(layer, path.read_text(encoding="utf-8")))
    }
    assert not broken, f"{layer} imports what docs/architecture.md forbids: {broken}"


@pytest.mark.parametrize(
    ("layer", "source", "expected"),
    [
        ("queue", "from headless_wan.media.fetch import safe_filename", "headless_wan.media.fetch"),
        ("queue", "def f():\n    import headless_wan.media.fetch\n", "headless_wan.media.fetch"),
        ("queue", "from headless_wan import media", "headless_wan.media"),
        ("worker", "from headless_wan.queue.sqlite import SqliteQueue", "headless_wan.queue.sqlite"),
        ("domain", "from headless_wan.errors import InvalidTaskParams", "headless_wan.errors"),
        ("safety", "import httpx", "httpx"),
    ],
)
def test_a_forbidden_import_is_reported(layer: str, source: str, expected: str) -> None:
    assert expected in violations(layer, source)


@pytest.mark.parametrize(
    ("layer", "source"),
    [
        ("worker", "from headless_wan.queue.base import QueueClient"),
        ("queue", "from headless_wan.safety import redact_url"),
        ("domain", "from headless_wan.domain.tasks import Task"),
        ("queue", "from headless_wan.mediator import x"),  # a prefix is a module path, not a string prefix
    ],
)
def test_an_allowed_import_passes(layer: str, source: str) -> None:
    assert violations(layer, source) == []
