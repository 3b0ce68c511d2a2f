"""Hostile payloads against a real worker process on the embedded queue: each fails with a message
naming the field, the value and the limit; nothing is left In Progress; the worker carries on."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from headless_wan.domain.tasks import TaskStatus
from tests.fixtures.travel.support import orchestrator_payload
from tests.integration.queue.conftest import Site
from tests.unit.media.test_image_limits import png_claiming

pytestmark = pytest.mark.slow


class _RecordingHandler(SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, format: str, *args: object) -> None:
        self.requests.append(self.path)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    root = tmp_path / "served"
    root.mkdir()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(root / "start.png")
    png_claiming(root / "bomb.png", 30000, 30000)
    requests: list[str] = []
    handler = type("Handler", (_RecordingHandler,), {"requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def travel(images: list[str]) -> dict[str, object]:
    return {**orchestrator_payload(images), "project_id": "project-1"}


def nested(levels: int) -> object:
    value: object = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def test_hostile_tasks_fail_clearly_and_the_worker_carries_on(
    site: Site, served: tuple[str, list[str]]
) -> None:
    base, requests = served
    fan_out = site.submit("travel_orchestrator", travel([f"https://img.example/{i}.png" for i in range(70)]))
    bomb_travel = site.submit("travel_orchestrator", travel([f"{base}/start.png", f"{base}/bomb.png"]))
    port = base.rsplit(":", 1)[1]
    vace = {"prompt": "x", "model": "tiny", "resolution": "64x64", "video_length": 5}
    metadata = site.submit("vace", {**vace, "image_refs": ["http://169.254.169.254/latest/meta-data/"]})
    loopback = site.submit("vace", {**vace, "image_refs": [f"http://[::1]:{port}/refused.png"]})
    deep = site.submit("echo", {"message": "x", "extra": nested(200)})
    fine = site.submit("echo", {"message": "still working"})

    # 127.0.0.1 is allowed (the travel images are served there); ::1 is not, though it is the same machine.
    drained = site.cli(
        "worker", "--drain", "--model-override", "tiny", HW_INPUT_ALLOW_HOSTS=json.dumps(["127.0.0.1"])
    )
    assert drained.returncode == 0, drained.stderr

    def failed(task_id: str) -> str:
        task = site.get(task_id)
        assert task.status is TaskStatus.FAILED, (task.status, task.error_message)
        return task.error_message or ""

    assert "70 images make 69 segments, over the limit of 64 segments per travel run" in failed(fan_out)
    assert "travel_segment" in failed(bomb_travel)
    segment = next(t for t in site.queue().children(bomb_travel) if t.task_type == "travel_segment")
    assert "end_image_url: image end_image is over the 50,000,000-pixel input limit" in failed(segment.id)
    assert "169.254.169.254" in failed(metadata) and "link-local" in failed(metadata)
    assert "host ::1 resolves to a non-public address (::1, loopback)" in failed(loopback)
    assert "allow it with HW_INPUT_ALLOW_HOSTS" in failed(loopback)
    assert "params nests at least 65 levels deep, over the limit of 64" in failed(deep)
    assert site.get(fine).status is TaskStatus.COMPLETE
    assert not site.queue().list_tasks(TaskStatus.IN_PROGRESS)
    assert "/refused.png" not in requests
    assert requests.count("/bomb.png") == 1  # fetched once, refused from its header, never retried
