"""`/healthz` and `/metrics` over HTTP, from a daemon thread (stdlib server; no framework).

`/healthz` answers JSON `{"state": ..., "worker_id": ...}`: HTTP 200 while the worker is starting,
ready, busy or draining (it is alive and doing what it should), 503 once it has failed. Starting
counts as healthy so orchestrators give a cold model load its time; use the `state` field (or the
`hw_worker_state` metric) to gate traffic on "ready".
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from headless_wan.metrics import Metrics

log = logging.getLogger("headless_wan.metrics")


@dataclass(frozen=True)
class ServerAddress:
    host: str
    port: int


class HealthServer:
    def __init__(self, metrics: Metrics, worker_id: str, host: str, port: int) -> None:
        handler = _handler_class(metrics, worker_id)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)

    @property
    def address(self) -> ServerAddress:
        host, port = self._server.server_address[:2]
        return ServerAddress(str(host), int(port))

    def start(self) -> ServerAddress:
        self._thread.start()
        address = self.address
        log.info(
            "health and metrics on http://%s:%d (/healthz, /metrics)",
            address.host,
            address.port,
            extra={"action": "metrics_listening"},
        )
        return address

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_class(metrics: Metrics, worker_id: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "headless_wan"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                state = metrics.health.state
                body = json.dumps({"state": state.value, "worker_id": worker_id}).encode()
                self._send(200 if state.healthy else 503, "application/json", body)
            elif path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(metrics.registry))
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found: try /healthz or /metrics\n")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # scrapes every few seconds would drown the worker's own log

    return Handler
