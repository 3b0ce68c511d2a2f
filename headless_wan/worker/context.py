"""Queue-side services handed to handlers through TaskContext."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from headless_wan.domain.tasks import ClaimedTask, NewTask, Task
from headless_wan.queue.base import QueueClient


class QueueChildTasks:
    """Children of the claimed task: linked by `parent_id`, in the parent's project by default."""

    def __init__(self, queue: QueueClient, claim: ClaimedTask) -> None:
        self._queue = queue
        self._claim = claim

    def enqueue(self, children: Sequence[NewTask]) -> list[str]:
        parent = self._claim.task
        return [
            self._queue.enqueue(
                replace(child, parent_id=parent.id, project_id=child.project_id or parent.project_id)
            )
            for child in children
        ]

    def existing(self) -> list[Task]:
        return self._queue.children(self._claim.id)
