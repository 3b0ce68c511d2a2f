"""A loopback HTTP server serving test images (and 404s), for travel handler tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import allow_loopback_inputs


@dataclass(frozen=True)
class ImageServer:
    base_url: str
    root: Path

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"


def _handler_for(root: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = root / self.path.lstrip("/").split("?", 1)[0]
            if not path.is_file():
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


COLOURS = [(230, 60, 40), (40, 200, 90), (50, 90, 230), (240, 240, 40)]


@pytest.fixture
def image_server(tmp_path: Path) -> Iterator[ImageServer]:
    root = tmp_path / "served"
    root.mkdir()
    for index, colour in enumerate(COLOURS):
        Image.new("RGB", (80, 48), colour).save(root / f"img{index}.png")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(root))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    allow_loopback_inputs()
    try:
        yield ImageServer(f"http://127.0.0.1:{server.server_address[1]}", root)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
