"""Write `.env.example` from the Settings model, so every setting is documented exactly once.

python scripts/gen_env_example.py          # rewrite .env.example
python scripts/gen_env_example.py --check  # exit 1 if it is out of date (used by the tests)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from headless_wan.config import Settings

HEADER = """\
# headless_wan settings. Copy to `.env` (read from the working directory) or export as variables.
# Generated from headless_wan/config.py by scripts/gen_env_example.py; do not edit by hand.
# Lists are JSON (e.g. HW_TASK_TYPES='["vace","travel_segment"]'). Durations are seconds (_s).
"""


def env_name(name: str, field: FieldInfo) -> str:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[-1])  # the bare Reigh-compatible name
    return f"HW_{name.upper()}"


def default_text(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return ""  # computed at start-up (e.g. the worker id)
    value = field.default
    if value is PydanticUndefined or value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return "[]" if not value else "[" + ",".join(f'"{v}"' for v in value) + "]"
    return str(value)


def render() -> str:
    lines = [HEADER]
    for name, field in Settings.model_fields.items():
        lines.append(f"# {field.description}")
        default = default_text(field)
        prefix = "" if default else "# "
        lines.append(f"{prefix}{env_name(name, field)}={default}")
        lines.append("")
    return "\n".join(lines)


def write_or_check(path: Path, text: str, *, check: bool, script: str) -> int:
    """Write `text` to `path`, or with `check` only compare: 1 (and say how to fix it) if stale."""
    if check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path} is out of date: run python scripts/{script}", file=sys.stderr)
            return 1
        return 0
    path.write_text(text, encoding="utf-8")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--path", type=Path, default=Path(__file__).resolve().parent.parent / ".env.example")
    args = parser.parse_args()
    return write_or_check(args.path, render(), check=args.check, script=Path(__file__).name)


if __name__ == "__main__":
    raise SystemExit(main())
