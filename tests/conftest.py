"""Test-wide set-up: no settings leak in from the environment, no model hub is ever contacted."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

_LEAKY_PREFIXES = ("HW_",)
_LEAKY_NAMES = ("SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY", "WORKER_ID", "DATABASE_URL")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in list(os.environ):
        if name.startswith(_LEAKY_PREFIXES) or name in _LEAKY_NAMES:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    # Settings also read `.env` from the working directory; tests run from a clean one.
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(autouse=True)
def _strict_url_policy() -> Iterator[None]:
    """Each test starts with the strict outbound URL policy; one that builds handlers from Settings
    (which installs the configured policy) cannot leak its allow list into the next test."""
    from headless_wan.media import url_policy

    url_policy.install(url_policy.UrlPolicy())
    yield
    url_policy.install(url_policy.UrlPolicy())
