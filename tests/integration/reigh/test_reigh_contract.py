"""The shared queue contract suite, run against ReighQueue over HTTP where Reigh's semantics match.

The tests are imported from `tests/contract/test_queue_contract.py` and use this module's `queue`
fixture. Those whose expectations legitimately differ on Reigh are listed with the reason and the
Reigh-specific test that covers the behaviour instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from headless_wan.domain.tasks import NewTask
from headless_wan.queue.reigh import ReighQueue
from tests.contract.test_queue_contract import (  # noqa: F401  (collected here with the reigh fixture)
    test_claims_oldest_first_and_marks_in_progress,
    test_enqueue_with_existing_id_changes_nothing,
    test_fail_records_message,
    test_list_filters_by_status_newest_first,
    test_recover_gives_back_only_this_workers_held_tasks,
    test_release_requeues_with_attempts_until_the_cap,
)
from tests.helpers import FakeClock
from tests.integration.reigh.conftest import client
from tests.reigh_server import ReighServer

DIFFERENT_ON_REIGH = {
    "test_task_type_filter": "Reigh's claim cannot filter by task type (only run_type)",
    "test_dependencies_gate_claims": "Reigh completes a task only with an output file; gating is in test_reigh_queue",
    "test_complete_publishes_output_then_marks_complete": "outputs are public URLs; see test_reigh_queue uploads",
    "test_expired_lease_requeues_and_fences_the_old_holder": "Reigh has no leases (its scaler resets stuck tasks)",
    "test_heartbeat_extends_the_lease": "Reigh has no leases",
    "test_dead_workers_task_fails_after_max_attempts": "Reigh has no leases; recovery is by restart (recover)",
    "test_waiting_parent_completes_with_its_final_childs_output": "Reigh completes only travel orchestrators itself",
    "test_failed_child_fails_parent_and_cancels_queued_siblings": "Reigh's cascade fails siblings (not Cancelled)",
    "test_user_cancel_is_visible_to_the_holder": "only the Reigh app cancels; see test_a_cancelled_task_is_never_touched_again",
    "test_completed_segments_of_a_run_in_index_order": "outputs are URLs; see test_predecessor_and_completed_segment_lookups",
}


class _AppProjectQueue(ReighQueue):
    """The Reigh app always gives tasks a project; the contract suite's tasks have none."""

    project_id: str

    def enqueue(self, task: NewTask) -> str:
        return super().enqueue(replace(task, project_id=task.project_id or self.project_id))


@pytest.fixture
def queue(tmp_path: Path, contract: str) -> Iterator[ReighQueue]:
    with ReighServer(tmp_path / "reigh", contract=contract) as server:
        base = client(server)
        q = _AppProjectQueue(base._options)
        q.project_id = server.project_id
        q.open()
        q.clock = FakeClock()  # type: ignore[attr-defined]  (the suite ticks it; Reigh uses real time)
        yield q
        q.close()
        base.close()


@pytest.mark.parametrize("name", sorted(DIFFERENT_ON_REIGH))
def test_contract_cases_that_differ_on_reigh(name: str) -> None:
    pytest.skip(f"{name}: {DIFFERENT_ON_REIGH[name]}")
