"""PostgreSQL for tests: the server named by HW_TEST_DATABASE_URL, one throw-away schema per test.

The DSN is read at import time, before the autouse fixture strips HW_* variables from the
environment. Where no server answers, tests are skipped with the reason (shown by `-ra`), except
under CI (`CI=true`, as `.ci/run` sets): there a missing PostgreSQL fails them, so CI cannot go
green with the PostgreSQL suites skipped.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
TEST_DSN = os.environ.get("HW_TEST_DATABASE_URL") or DEFAULT_DSN
UNDER_CI = os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@functools.cache
def unreachable_reason() -> str | None:
    try:
        with psycopg.connect(TEST_DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"no PostgreSQL server for the tests (HW_TEST_DATABASE_URL, default {DEFAULT_DSN}): {first}"
    return None


def require_postgres() -> str:
    """The test DSN, or skip the calling test with the reason (fail it under CI)."""
    reason = unreachable_reason()
    if reason:
        missing(reason, under_ci=UNDER_CI)
    return TEST_DSN


def missing(reason: str, *, under_ci: bool) -> None:
    if under_ci:
        pytest.fail(f"CI=true requires PostgreSQL: {reason}", pytrace=False)
    print(f"SKIPPED: {reason}")
    pytest.skip(reason)


def drop_schema(schema: str) -> None:
    with psycopg.connect(TEST_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@contextmanager
def fresh_schema(prefix: str = "hw_test") -> Iterator[str]:
    """A schema name nobody else uses; dropped (with everything in it) afterwards."""
    require_postgres()
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        yield schema
    finally:
        drop_schema(schema)
