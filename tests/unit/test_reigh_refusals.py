"""How the Reigh adapter reads a refusal: 2026-04's 409 body (whole, or cut short by the excerpt
limit), its JSON error envelope, and which generation a shared state has learnt."""

from __future__ import annotations

import json

from headless_wan.queue.reigh.contract import Contract, ContractState, shared_state
from headless_wan.queue.reigh.status import _guard
from headless_wan.queue.reigh.transport import ReighHTTPError

REFUSAL = {
    "success": False,
    "task_id": "7f1c0d8e-0000-4000-8000-000000000001",
    "current_status": "Cancelled",
    "requested_status": "Failed",
    "allowed_transitions": [],
    "message": "Invalid status transition: Cancelled → Failed",
}


def test_a_409_body_names_the_current_status() -> None:
    guard = _guard(json.dumps(REFUSAL))
    assert guard is not None and guard.current_status == "Cancelled" and guard.allowed_transitions == []


def test_a_409_body_cut_short_still_names_the_current_status() -> None:
    cut = json.dumps(REFUSAL)[:120] + "…"
    guard = _guard(cut)
    assert guard is not None and guard.current_status == "Cancelled"
    assert _guard("Conflict") is None


def test_an_error_envelope_reads_as_its_message() -> None:
    body = json.dumps({"error": "x", "errorCode": "project_not_found", "message": "Project not found"})
    assert str(ReighHTTPError("create-task", 404, body)) == (
        "Reigh create-task answered HTTP 404: Project not found (project_not_found)"
    )
    assert str(ReighHTTPError("claim", 400, "plain text")) == "Reigh claim answered HTTP 400: plain text"


def test_auto_learns_once_and_a_pinned_contract_never_changes() -> None:
    state = ContractState(Contract.AUTO)
    assert state.current is None
    state.learn(Contract.V2026_01, "first")
    state.learn(Contract.V2026_04, "second")
    assert state.current is Contract.V2026_01
    pinned = ContractState(Contract.V2026_04)
    pinned.learn(Contract.V2026_01, "ignored")
    assert pinned.is_2026_04()


def test_one_state_per_server_credential_and_setting() -> None:
    a = shared_state("http://r.example", "key-1", Contract.AUTO)
    assert shared_state("http://r.example/", "key-1", Contract.AUTO) is a
    assert shared_state("http://r.example", "key-2", Contract.AUTO) is not a
    assert shared_state("http://r.example", "key-1", Contract.V2026_01) is not a
