"""The outbound URL policy against a real loopback server that records every request it receives.

A refused URL must fail at once (no retries) and no request may reach the server; the same URL works
once its host is allowed.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from headless_wan.config import Settings
from headless_wan.errors import InvalidTaskParams
from headless_wan.media import url_policy
from headless_wan.media.fetch import fetch
from headless_wan.media.url_policy import UrlPolicy, UrlRefused
from headless_wan.wiring import build_url_policy

BODY = b"input bytes"


@dataclass
class Recorder:
    port: int
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, host: str, path: str = "/file.bin") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    state = Recorder(port=0)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            with state.lock:
                state.requests.append(self.path)
            if self.path.startswith("/redirect-to/"):
                target = self.path.removeprefix("/redirect-to/")
                self.send_response(302)
                self.send_header("Location", f"http://{target}:{state.port}/file.bin")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _fetch(url: str, dest: Path, policy: UrlPolicy | None = None) -> Path:
    return fetch(url, dest, max_mb=1, timeout_s=10, retries=3, backoff_s=0.01, policy=policy)


REFUSED_FORMS = [
    ("127.0.0.1", "loopback"),
    ("localhost", "loopback"),
    ("[::1]", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("2130706433", "loopback"),  # decimal form of 127.0.0.1
    ("0x7f000001", "loopback"),  # hex form
    ("127.1", "loopback"),  # short dotted form
    ("[::ffff:127.0.0.1]", "loopback"),  # IPv4-mapped IPv6
]


@pytest.mark.parametrize(("host", "kind"), REFUSED_FORMS)
def test_loopback_forms_are_refused_before_any_request(
    recorder: Recorder, tmp_path: Path, host: str, kind: str
) -> None:
    with pytest.raises(UrlRefused) as caught:
        _fetch(recorder.url(host), tmp_path)
    message = str(caught.value)
    assert f"({kind}" in message or f", {kind})" in message
    assert "allow it with HW_INPUT_ALLOW_HOSTS" in message
    assert recorder.requests == []
    assert list(tmp_path.iterdir()) == []  # no partial file left behind


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("169.254.169.254", "link-local"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("224.0.0.1", "multicast"),
    ],
)
def test_metadata_and_private_addresses_are_refused(tmp_path: Path, address: str, kind: str) -> None:
    # Refused at resolution, so nothing is ever sent towards these addresses.
    with pytest.raises(UrlRefused, match=rf"resolves to a non-public address \({address}, {kind}\)"):
        _fetch(f"http://{address}/latest/meta-data/", tmp_path)


def test_a_refusal_is_a_task_error_and_never_retried(recorder: Recorder, tmp_path: Path) -> None:
    with pytest.raises(InvalidTaskParams):  # terminal: the worker fails the task, no release
        _fetch(recorder.url("localhost"), tmp_path)
    assert recorder.requests == []


@pytest.mark.parametrize("entry", ["127.0.0.1", "127.0.0.0/8", "localhost"])
def test_allowed_once_listed(recorder: Recorder, tmp_path: Path, entry: str) -> None:
    policy = UrlPolicy.from_entries([entry])
    host = "localhost" if entry == "localhost" else "127.0.0.1"
    path = _fetch(recorder.url(host), tmp_path, policy)
    assert path.read_bytes() == BODY
    assert recorder.requests == ["/file.bin"]


def test_ipv6_loopback_allowed_by_bracketed_entry(tmp_path: Path) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    policy = UrlPolicy.from_entries(["[::1]"])
    assert policy.resolve("[::1]", 80) == "::1"


def test_a_redirect_from_an_allowed_host_to_a_refused_one_is_refused(
    recorder: Recorder, tmp_path: Path
) -> None:
    # localhost is allowed by name; the redirect target 127.0.0.1 is not (same machine, other name):
    # the policy judges every hop, and the target never sees a request.
    policy = UrlPolicy.from_entries(["localhost"])
    with pytest.raises(UrlRefused, match=r"host 127\.0\.0\.1 resolves to a non-public address"):
        _fetch(recorder.url("localhost", "/redirect-to/127.0.0.1"), tmp_path, policy)
    assert recorder.requests == ["/redirect-to/127.0.0.1"]


def test_a_redirect_between_allowed_hosts_is_followed(recorder: Recorder, tmp_path: Path) -> None:
    policy = UrlPolicy.from_entries(["localhost", "127.0.0.1"])
    path = _fetch(recorder.url("localhost", "/redirect-to/127.0.0.1"), tmp_path, policy)
    assert path.read_bytes() == BODY
    assert recorder.requests == ["/redirect-to/127.0.0.1", "/file.bin"]


def test_a_host_with_one_private_address_among_public_ones_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # DNS answers are attacker-controlled: one private address in the answer is enough to refuse.
    answers = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, 80)) for ip in ("93.184.215.14", "10.0.0.7")]
    monkeypatch.setattr(url_policy.socket, "getaddrinfo", lambda *args, **kwargs: answers)
    with pytest.raises(UrlRefused, match=r"10\.0\.0\.7, private"):
        UrlPolicy().resolve("rebind.example", 80)
    monkeypatch.setattr(url_policy.socket, "getaddrinfo", lambda *args, **kwargs: answers[:1])
    assert UrlPolicy().resolve("public.example", 80) == "93.184.215.14"


def test_the_installed_policy_is_the_default(recorder: Recorder, tmp_path: Path) -> None:
    with pytest.raises(UrlRefused):
        fetch(recorder.url("127.0.0.1"), tmp_path, max_mb=1, timeout_s=5)
    url_policy.install(UrlPolicy.from_entries(["127.0.0.1"]))
    assert fetch(recorder.url("127.0.0.1"), tmp_path, max_mb=1, timeout_s=5).read_bytes() == BODY


def test_settings_allow_the_queues_own_storage_hosts() -> None:
    settings = Settings(
        supabase_url="http://127.0.0.1:54321",
        s3_endpoint_url="http://minio.internal:9000",
        input_allow_hosts=("10.20.0.0/16",),
    )
    policy = build_url_policy(settings)
    assert policy.resolve("127.0.0.1", 54321) == "127.0.0.1"
    assert "minio.internal" in policy.allowed_hosts
    assert policy.resolve("10.20.3.4", 80) == "10.20.3.4"
    with pytest.raises(UrlRefused):
        policy.resolve("10.21.0.1", 80)
    with pytest.raises(UrlRefused):
        build_url_policy(Settings()).resolve("127.0.0.1", 80)
