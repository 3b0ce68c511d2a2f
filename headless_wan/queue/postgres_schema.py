"""Schema migrations for the PostgreSQL queue: numbered `.sql` files in `queue/sql/postgres/`.

`migrate` is idempotent and safe to run from many machines at once: an advisory lock serialises
migrators, each migration runs in the same transaction as its row in `hw_schema_migrations`, and
a migration already recorded is never run again.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from headless_wan.errors import ConfigError
from headless_wan.queue.sql_files import Migration, load_migrations, load_queries

Q = load_queries("postgres/queries.sql")
MIGRATIONS = load_migrations("postgres")
LATEST = MIGRATIONS[-1].version


def set_search_path(conn: psycopg.Connection[Any], schema: str | None) -> None:
    """Point unqualified names (tables, the task_status type) at the queue's schema."""
    if schema:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))


def migrate(conn: psycopg.Connection[Any], schema: str | None) -> list[Migration]:
    """Apply every migration not applied yet, in order; returns those applied now."""
    applied_now: list[Migration] = []
    with conn.transaction():
        conn.execute(Q["migration_lock"])
        if schema:
            conn.execute(sql.SQL(Q["create_schema"]).format(schema=sql.Identifier(schema)))
        set_search_path(conn, schema)
        conn.execute(Q["create_migrations_table"])
        done = {_first(row) for row in conn.execute(Q["applied_migrations"]).fetchall()}
        for migration in MIGRATIONS:
            if migration.version in done:
                continue
            conn.execute(migration.sql)  # no parameters: one script of many statements
            conn.execute(Q["record_migration"], {"version": migration.version, "name": migration.name})
            applied_now.append(migration)
    return applied_now


def pending(conn: psycopg.Connection[Any]) -> list[Migration]:
    """Migrations the connection's schema still lacks (all of them on an empty database)."""
    present = conn.execute(Q["migrations_table_exists"]).fetchone()
    if not _first(present):
        return list(MIGRATIONS)
    done = {_first(row) for row in conn.execute(Q["applied_migrations"]).fetchall()}
    return [m for m in MIGRATIONS if m.version not in done]


def describe_schema(conn: psycopg.Connection[Any], schema: str | None) -> str:
    """`schema … up to date (server N.M)`, or ConfigError naming what `migrate` still has to apply."""
    set_search_path(conn, schema)
    missing = pending(conn)
    name = schema or "public"
    if missing:
        raise ConfigError(
            f"schema {name} lacks {len(missing)} migration(s); run `python -m headless_wan migrate` once"
        )
    info = conn.info
    version = info.server_version
    return (
        f"{info.host}:{info.port}/{info.dbname} schema {name} up to date "
        f"(server {version // 10000}.{version % 10000})"
    )


def _first(row: Any) -> Any:
    if row is None:
        return None
    return next(iter(row.values())) if isinstance(row, dict) else row[0]
