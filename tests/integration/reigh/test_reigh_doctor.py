"""`doctor`'s Reigh check: one authenticated read, nothing created, no key in the report."""

from __future__ import annotations

from pydantic import SecretStr

from headless_wan import doctor
from headless_wan.config import Settings
from tests.integration.reigh.conftest import client
from tests.reigh_server import ReighServer


def settings_for(server: ReighServer, **overrides: object) -> Settings:
    base: dict[str, object] = {
        "queue": "reigh",
        "supabase_url": server.url,
        "supabase_service_role_key": SecretStr(server.service_key),
        "worker_id": "doctor-probe",
        "reigh_retry_attempts": 1,
    }
    return Settings(**{**base, **overrides})


def test_service_role_and_pat_access_are_checked_without_registering(server: ReighServer) -> None:
    assert "service-role key accepted" in client(server).check_access()
    assert "personal access token accepted" in client(server, pat=True).check_access()
    check = doctor.queue_check(settings_for(server))
    assert check.level is doctor.Level.OK and server.url in check.detail
    assert server.store.worker("doctor-probe") is None  # doctor never creates a worker row


def test_a_refused_key_fails_without_showing_it(server: ReighServer) -> None:
    wrong = "sk-wrong-secret-value"
    check = doctor._guarded(
        "queue", lambda: doctor.queue_check(settings_for(server, supabase_service_role_key=SecretStr(wrong)))
    )
    assert check.level is doctor.Level.FAIL
    assert wrong not in check.detail
