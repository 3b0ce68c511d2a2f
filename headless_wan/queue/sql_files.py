"""Named SQL statements and numbered migrations kept in `.sql` files under `queue/sql/`, loaded once."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importlib.resources.abc is 3.11+; annotations only
    from importlib.resources.abc import Traversable

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"^(\d+)_(\w+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def _sql_path(relative: str) -> Traversable:
    # "postgres/queries.sql" → sql/postgres/queries.sql; a plain name stays in sql/ (the SQLite file).
    return resources.files("headless_wan.queue").joinpath("sql", *relative.split("/"))


@functools.cache
def load_queries(filename: str) -> dict[str, str]:
    text = _sql_path(filename).read_text(encoding="utf-8")
    parts = _NAME.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


@functools.cache
def load_migrations(folder: str) -> tuple[Migration, ...]:
    """Files named `NNN_name.sql` in `sql/<folder>/`, in version order; each runs as one script."""
    found = []
    for entry in _sql_path(folder).iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions in sql/{folder}: {versions}")
    return tuple(found)
