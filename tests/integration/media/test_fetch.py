"""fetch() against a real HTTP server on loopback: limits, status mapping, retries, timeouts, schemes, names."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from headless_wan.errors import InputUnavailable, InvalidTaskParams, TransientError
from headless_wan.media import url_policy
from headless_wan.media.fetch import fetch, safe_filename

SMALL = bytes(range(256)) * 4  # 1 KiB
BIG = 2 * 1024 * 1024
FLAKY_FAILURES = 2
MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def _loopback_allowed() -> None:
    # These tests are about downloading itself; the server is on loopback, allowed the way a local set-up
    # allows it (HW_INPUT_ALLOW_HOSTS). The refusals are in test_url_policy.py.
    url_policy.install(url_policy.UrlPolicy.from_entries(["127.0.0.1"]))


@dataclass
class ServerState:
    lock: threading.Lock = field(default_factory=threading.Lock)
    hits: Counter[str] = field(default_factory=Counter)
    release: threading.Event = field(default_factory=threading.Event)

    def hit(self, path: str) -> int:
        with self.lock:
            self.hits[path] += 1
            return self.hits[path]


class Handler(BaseHTTPRequestHandler):
    state: ServerState

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        count = self.state.hit(path)
        try:
            self._route(path, count)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (size limit, timeout): expected in these tests

    def _route(self, path: str, count: int) -> None:
        status = {"/missing": 404, "/forbidden": 403, "/gone": 410, "/broken": 500, "/bad-request": 400}
        if path in status:
            self._send(status[path], b"error page")
        elif path == "/flaky":
            self._send(503, b"busy") if count <= FLAKY_FAILURES else self._send(200, SMALL)
        elif path == "/redirect":
            self._headers(302, {"Location": "/files/small.bin", "Content-Length": "0"})
        elif path == "/big":
            self._headers(200, {"Content-Length": str(BIG)})
            self._stream(BIG)
        elif path == "/big-unannounced":
            self._headers(200, {})  # HTTP/1.0 without length: the body ends when the connection closes
            self._stream(BIG)
        elif path == "/slow":
            self.state.release.wait(10)
            self._send(200, SMALL)
        elif path == "/drip":
            self._headers(200, {"Content-Length": "200"})
            for _ in range(200):
                if self.state.release.wait(0.02):
                    return
                self.wfile.write(b"x")
                self.wfile.flush()
        elif path.startswith("/files/"):
            self._send(200, SMALL)
        else:
            self._send(404, b"no route")

    def _headers(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()

    def _send(self, status: int, body: bytes) -> None:
        self._headers(status, {"Content-Length": str(len(body))})
        self.wfile.write(body)

    def _stream(self, total: int) -> None:
        chunk = b"\0" * 65536
        for _ in range(total // len(chunk)):
            self.wfile.write(chunk)


@dataclass(frozen=True)
class Server:
    base: str
    state: ServerState

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    state = ServerState()
    handler = type("BoundHandler", (Handler,), {"state": state})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", state)
    state.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture(autouse=True)
def fresh_state(server: Server) -> Iterator[None]:
    server.state.hits.clear()
    server.state.release.clear()
    yield
    server.state.release.set()  # let any handler still waiting finish


@pytest.fixture
def get(tmp_path: Path) -> Callable[..., Path]:
    def call(source: str, **kwargs: object) -> Path:
        options: dict[str, object] = {"max_mb": 1.0, "timeout_s": 5.0, "backoff_s": 0.01}
        options.update(kwargs)
        return fetch(source, tmp_path / "dl", **options)  # type: ignore[arg-type]

    return call


def only_file(tmp_path: Path) -> list[str]:
    folder = tmp_path / "dl"
    return sorted(os.listdir(folder)) if folder.exists() else []


def test_downloads_into_dest_dir_under_url_name(
    server: Server, get: Callable[..., Path], tmp_path: Path
) -> None:
    path = get(server.url("/files/model%20v1.safetensors?token=SECRET"))
    assert path == tmp_path / "dl" / "model_v1.safetensors"
    assert path.read_bytes() == SMALL
    assert only_file(tmp_path) == ["model_v1.safetensors"]


def test_filename_override_is_sanitised(server: Server, get: Callable[..., Path], tmp_path: Path) -> None:
    path = get(server.url("/files/a.bin"), filename="../../escape.bin")
    assert path == tmp_path / "dl" / "escape.bin"
    assert path.read_bytes() == SMALL


def test_redirects_are_followed(server: Server, get: Callable[..., Path]) -> None:
    assert get(server.url("/redirect")).read_bytes() == SMALL
    assert server.state.hits["/files/small.bin"] == 1


def test_size_exactly_at_the_limit_is_accepted(server: Server, get: Callable[..., Path]) -> None:
    assert get(server.url("/files/exact.bin"), max_mb=len(SMALL) / MIB).read_bytes() == SMALL
    with pytest.raises(InputUnavailable, match="limit"):
        get(server.url("/files/exact.bin"), max_mb=(len(SMALL) - 1) / MIB)


@pytest.mark.parametrize("route", ["/big", "/big-unannounced"])
def test_oversized_download_is_refused_and_leaves_nothing(
    server: Server, get: Callable[..., Path], tmp_path: Path, route: str
) -> None:
    with pytest.raises(InputUnavailable, match=r"over the 1\.00 MiB download limit"):
        get(server.url(route))
    assert only_file(tmp_path) == []
    assert server.state.hits[route] == 1  # terminal: not retried


@pytest.mark.parametrize(("route", "status"), [("/missing", 404), ("/forbidden", 403), ("/gone", 410)])
def test_missing_or_forbidden_is_terminal_and_hides_the_query(
    server: Server, get: Callable[..., Path], route: str, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="headless_wan")
    with pytest.raises(InputUnavailable) as info:
        get(server.url(f"{route}?token=SECRET&sig=abc"))
    message = str(info.value)
    assert f"HTTP {status}" in message
    assert server.url(route) in message
    assert "SECRET" not in message and "sig=" not in message
    assert "SECRET" not in caplog.text
    assert server.state.hits[route] == 1


def test_other_client_errors_are_terminal(server: Server, get: Callable[..., Path]) -> None:
    with pytest.raises(InputUnavailable, match="HTTP 400"):
        get(server.url("/bad-request"))
    assert server.state.hits["/bad-request"] == 1


def test_server_error_then_success_is_retried(server: Server, get: Callable[..., Path]) -> None:
    assert get(server.url("/flaky"), retries=3).read_bytes() == SMALL
    assert server.state.hits["/flaky"] == FLAKY_FAILURES + 1


def test_persistent_server_error_becomes_transient(
    server: Server, get: Callable[..., Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="headless_wan")
    with pytest.raises(TransientError, match="HTTP 500") as info:
        get(server.url("/broken?key=SECRET"), retries=2)
    assert server.state.hits["/broken"] == 3
    assert "SECRET" not in str(info.value)
    assert "retrying" in caplog.text and "SECRET" not in caplog.text
    assert only_file(tmp_path) == []


def test_unresponsive_server_times_out(server: Server, get: Callable[..., Path]) -> None:
    started = time.monotonic()
    with pytest.raises(TransientError, match="could not download"):
        get(server.url("/slow"), timeout_s=0.5)
    assert time.monotonic() - started < 3


def test_slow_body_hits_the_total_time_limit(
    server: Server, get: Callable[..., Path], tmp_path: Path
) -> None:
    started = time.monotonic()
    with pytest.raises(TransientError, match="time limit"):
        get(server.url("/drip"), timeout_s=0.5)
    assert time.monotonic() - started < 3
    assert only_file(tmp_path) == []


def test_connection_refused_is_transient(get: Callable[..., Path]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransientError, match="ConnectError"):
        get(f"http://127.0.0.1:{port}/a.bin", retries=1)


@pytest.mark.parametrize(
    "source",
    [
        "file:///etc/passwd",
        "FILE:///etc/passwd",
        "ftp://example.com/a.bin",
        "data:text/plain;base64,aGk=",
        "gopher://example.com/x",
        "//example.com/a.bin",
    ],
)
def test_non_http_schemes_are_invalid(get: Callable[..., Path], source: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidTaskParams, match="only http:// and https:// URLs are accepted"):
        get(source, allow_local=True)
    assert only_file(tmp_path) == []


@pytest.mark.parametrize("source", ["http://", "http:///a.bin", "http://127.0.0.1:99999/a", "http://[::1/a"])
def test_malformed_urls_are_invalid(get: Callable[..., Path], source: str) -> None:
    with pytest.raises(InvalidTaskParams, match=r"no host|malformed"):
        get(source)


def test_local_paths_need_permission(get: Callable[..., Path], tmp_path: Path) -> None:
    local = tmp_path / "input image.png"
    local.write_bytes(SMALL)
    with pytest.raises(InvalidTaskParams, match="local file paths are not accepted"):
        get(str(local))
    copied = get(str(local), allow_local=True)
    assert copied == tmp_path / "dl" / "input_image.png"
    assert copied.read_bytes() == SMALL
    with pytest.raises(InputUnavailable, match="not found"):
        get(str(tmp_path / "missing.png"), allow_local=True)
    with pytest.raises(InputUnavailable, match="limit"):
        get(str(local), allow_local=True, max_mb=100 / MIB)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("%2e%2e%2f", "file"),
        ("..%2F..%2Fetc%2Fshadow", "shadow"),
        ("", "file"),
        ("..", "file"),
        (".bashrc", "bashrc"),
        ("-rf", "rf"),
        ("C:\\Users\\me\\lora.safetensors", "lora.safetensors"),
        ("vidéo finale.mp4", "video_finale.mp4"),
        ("视频.mp4", "_.mp4"),
        ("weights.bin?token=abc", "weights.bin"),
    ],
)
def test_safe_filename_cases(name: str, expected: str) -> None:
    assert safe_filename(name) == expected
