"""Outbound URL policy: which addresses a task may make this worker fetch from.

A task's input URLs (images, guide videos, clips, LoRAs) are chosen by whoever submitted the task. On a
cloud GPU box, a URL pointing at the instance metadata service (169.254.169.254), at loopback or at the
private network would let a task read what only the machine should see (server-side request forgery).
So every download resolves its host and refuses when *any* resolved address is not a public unicast
address: loopback, link-local, private, shared (CGNAT), reserved, multicast and unspecified addresses
are all refused, IPv4-mapped IPv6 forms included.

The check runs inside the HTTP client's connection step (`GuardedBackend.connect_tcp`), so it covers
the first request and every redirect hop, and the connection goes to the very address that was vetted
(a DNS answer that changes between check and connect cannot slip through). Numeric host forms that
the resolver accepts (`2130706433`, `0x7f000001`, `0177.0.0.1`) resolve to the address they mean and
are judged by it.

Allowed despite the rule: hosts named in the allow list (exact, case-insensitive), addresses inside an
allowed network (CIDR or single address), and by default the configured queue's own storage host. The
composition root installs the policy built from Settings once (`install`); `media.fetch` uses it for
every download unless a caller passes its own. Until then the strict policy (nothing allowed) applies.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore

from headless_wan.errors import InvalidTaskParams

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class UrlRefused(InvalidTaskParams):
    """The URL's host is not one this worker may fetch from. Final: retrying cannot help."""


@dataclass(frozen=True)
class UrlPolicy:
    allowed_hosts: frozenset[str] = frozenset()
    """Host names (lower case) fetched from whatever they resolve to."""
    allowed_networks: tuple[IPNetwork, ...] = ()
    """Addresses inside these networks are allowed even when not public."""
    setting_name: str = field(default="HW_INPUT_ALLOW_HOSTS", compare=False)
    """Named in refusal messages: where a user adds a host."""

    @classmethod
    def from_entries(cls, entries: Iterable[str], **kwargs: Any) -> UrlPolicy:
        """Entries are host names, IP addresses or CIDRs (`10.0.0.0/8`, `::1`). Bracketed IPv6 is accepted."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip().strip("[]").lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.rstrip("."))
        return cls(allowed_hosts=frozenset(hosts), allowed_networks=tuple(networks), **kwargs)

    def resolve(self, host: str, port: int) -> str:
        """The address to connect to for `host`, after checking every address it resolves to.

        Raises UrlRefused when the host resolves to a non-public address that is not allowed, and
        httpcore.ConnectError when it does not resolve at all (a network failure, retried as such).
        """
        name = host.strip("[]").lower().rstrip(".")
        addresses = _resolve(name, port)
        if name in self.allowed_hosts:
            return str(addresses[0])
        for address in addresses:
            if not is_public(address) and not self._allowed_address(address):
                raise UrlRefused(
                    f"host {host} resolves to a non-public address ({_unmapped(address)}, {describe(address)}); "
                    f"allow it with {self.setting_name}"
                )
        return str(addresses[0])

    def _allowed_address(self, address: IPAddress) -> bool:
        address = _unmapped(address)
        return any(address.version == net.version and address in net for net in self.allowed_networks)


def is_public(address: IPAddress) -> bool:
    address = _unmapped(address)
    return address.is_global and not address.is_multicast


def describe(address: IPAddress) -> str:
    """The reason an address is refused, in a word or two."""
    address = _unmapped(address)
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
    )
    return next((name for name, hit in checks if hit), "non-public")


def _unmapped(address: IPAddress) -> IPAddress:
    # ::ffff:127.0.0.1 reaches 127.0.0.1; judge it as that (Python 3.11's flags do not look inside).
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpcore.ConnectError(f"could not resolve {host}: {exc}") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    if not addresses:
        raise httpcore.ConnectError(f"could not resolve {host}")
    return addresses


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's network backend, connecting only to addresses the policy has vetted."""

    def __init__(self, policy: UrlPolicy) -> None:
        self._policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        address = self._policy.resolve(host, port)
        # TLS still verifies the certificate against the URL's host name (httpcore passes it as SNI).
        return super().connect_tcp(address, port, timeout, local_address, socket_options)

    def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise UrlRefused("input URLs cannot reach unix sockets")


def guarded_transport(policy: UrlPolicy) -> Any:
    """An httpx transport whose every connection (redirects included) goes through `policy`.

    Environment proxies are not used: a proxy would make the connection, and the policy could no
    longer see where it goes.
    """
    import httpx

    transport = httpx.HTTPTransport(trust_env=False)
    # httpx builds its httpcore pool without a way to pass a network backend; this replaces it
    # with an identical pool that has one (same TLS context as httpx's own default).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        network_backend=GuardedBackend(policy),
    )
    return transport


_installed = UrlPolicy()


def install(policy: UrlPolicy) -> None:
    """Make `policy` the one every download uses (called once by the composition root)."""
    global _installed
    _installed = policy


def installed() -> UrlPolicy:
    return _installed
