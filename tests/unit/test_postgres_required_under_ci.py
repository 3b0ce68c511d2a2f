"""CI must not go green with the PostgreSQL suites skipped: under CI a missing server fails them."""

from __future__ import annotations

import pytest

from tests.postgres_support import missing


def test_a_missing_postgres_fails_under_ci() -> None:
    with pytest.raises(pytest.fail.Exception, match="CI=true requires PostgreSQL: no server"):
        missing("no server", under_ci=True)


def test_a_missing_postgres_skips_outside_ci() -> None:
    with pytest.raises(pytest.skip.Exception, match="no server"):
        missing("no server", under_ci=False)
