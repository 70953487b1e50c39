"""SSRF guard for outbound vendor calls: refuse private, loopback, link-local and cloud-metadata targets.

Names are resolved once per new connection and the socket connects only to the addresses that were vetted
(`connect_vetted`), so a DNS answer that changes between the check and the connect (DNS rebinding) is never used.
A name that does not resolve is a host error (retried), not an unsafe URL: only an answer the guard refuses is UnsafeBaseUrl.

Every transport goes through `vet_outbound(host, port, scheme)`: HTTP (the pinned urllib3 connections of the shared client
and the OAuth token calls), LDAP (the pinned ldap3 server) and SMTP (the pinned smtplib sockets of the e-mail connector).
Configured targets are checked when they are saved (`outbound_target_problem`) and again on every connect.
tests/hardening/test_outbound_guard.py enumerates the connectors and the socket-opening calls of the code base.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from integrations.errors import ApiHostError, UnsafeBaseUrl

# Cloud metadata services are never a vendor API, so they are refused even when private ranges are allowed.
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "metadata.azure.com", "instance-data", "instance-data.ec2.internal"})
METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("169.254.170.2"),
        ipaddress.ip_address("100.100.100.200"),
        ipaddress.ip_address("fd00:ec2::254"),
    }
)
CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")

Resolver = Callable[[str, int], list[str]]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class VettedAddress:
    """One resolved address that passed the guard, ready for `socket.connect`."""

    family: int
    sockaddr: tuple[Any, ...]

    @property
    def ip(self) -> str:
        return str(self.sockaddr[0])


def host_unresolved(host: str, error: socket.gaierror) -> ApiHostError:
    """The retryable error for a name the resolver could not answer (EAI_AGAIN, EAI_NONAME, ...): DNS may be down for a while."""
    reason = error.strerror or str(error)
    return ApiHostError(
        f"Cannot resolve the host name {host} ({reason}). Bastion will retry; if this persists, check the host name and this server's DNS.",
        vendor_code="dns_resolution_failed",
    )


def _getaddrinfo(host: str, port: int) -> list[VettedAddress]:
    """One DNS lookup, in the resolver's order (the order a plain connect would try).

    A failed lookup raises socket.gaierror as socket.create_connection would: callers turn it into `host_unresolved`.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: set[tuple[Any, ...]] = set()
    addresses = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6) and sockaddr not in seen:
            seen.add(sockaddr)
            addresses.append(VettedAddress(family, tuple(sockaddr)))
    return addresses


def _resolve(host: str, port: int) -> list[str]:
    try:
        return sorted({address.ip for address in _getaddrinfo(host, port)})
    except socket.gaierror as exc:
        raise host_unresolved(host, exc) from exc


def _is_private(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
        or address in CARRIER_GRADE_NAT
    )


def _allow_private(allow_private: bool | None) -> bool:
    return settings.BASTION_ALLOW_PRIVATE_BASE_URLS if allow_private is None else allow_private


def is_ip_literal(host: str) -> bool:
    """True for an IP address written as the host (brackets and an IPv6 zone allowed)."""
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


# Characters no host name or address literal contains (a space, quotes, brackets after parsing, URL delimiters).
_NOT_IN_HOSTS = frozenset('<>"{}|\\^`[]/?#@')


def check_host_name(host: str) -> str:
    """Refuse an empty host or a metadata service name; return the normalised host (no DNS lookup)."""
    host = (host or "").rstrip(".").lower()
    if not host:
        raise UnsafeBaseUrl("The URL has no host.")
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F or char in _NOT_IN_HOSTS for char in host):
        raise UnsafeBaseUrl(f"{host[:100]!r} is not a valid host name.")
    if host in METADATA_HOSTS:
        raise UnsafeBaseUrl(f"{host} is a cloud metadata service and is never allowed.")
    return host


def check_addresses(host: str, addresses: Sequence[str], *, allow_private: bool | None = None) -> None:
    """Raise UnsafeBaseUrl if any address is a metadata address, or private while private targets are not allowed."""
    allow = _allow_private(allow_private)
    if not addresses:
        raise UnsafeBaseUrl(f"{host} resolves to no address.")
    for raw in addresses:
        try:
            address = ipaddress.ip_address(raw.strip("[]").split("%", 1)[0])
        except ValueError as exc:
            raise UnsafeBaseUrl(str(exc)) from exc
        if address in METADATA_ADDRESSES or (isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped in METADATA_ADDRESSES):
            raise UnsafeBaseUrl(f"{host} points at a cloud metadata address ({address}); refused.")
        if _is_private(address) and not allow:
            raise UnsafeBaseUrl(
                f"{host} resolves to a private, loopback or link-local address ({address}). "
                "Set BASTION_ALLOW_PRIVATE_BASE_URLS=true only if this server is meant to reach internal hosts."
            )


def _url_host_port(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        hostname, port = parts.hostname, parts.port
    except ValueError as exc:  # an unbalanced IPv6 bracket ("http://[::1"), a port out of range
        raise UnsafeBaseUrl(f"This is not a valid URL ({exc}).") from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeBaseUrl(f"Only http and https URLs are allowed, not {parts.scheme or 'no scheme'!r}.")
    host = check_host_name(hostname or "")
    if parts.username or parts.password:
        raise UnsafeBaseUrl("URLs with embedded credentials are not allowed; store credentials as a credential.")
    return host, port or (443 if parts.scheme == "https" else 80)


def check_url_target(url: str, *, allow_private: bool | None = None) -> tuple[str, int]:
    """The checks that need no DNS (scheme, host, embedded credentials, metadata names, literal addresses)."""
    host, port = _url_host_port(url)
    if is_ip_literal(host):
        check_addresses(host, [host], allow_private=allow_private)
    return host, port


def check_url(url: str, *, allow_private: bool | None = None, resolver: Resolver = _resolve) -> list[str]:
    """Raise UnsafeBaseUrl unless `url` is http(s) and every address it resolves to is public (or private is allowed).

    A name that does not resolve raises ApiHostError (retryable). This validates configuration; a connection must go
    through `connect_vetted`, which connects to what it vetted.
    """
    host, port = _url_host_port(url)
    addresses = [host] if is_ip_literal(host) else resolver(host, port)
    check_addresses(host, addresses, allow_private=allow_private)
    return list(addresses)


# The transports Bastion speaks to vendors, with their default ports. A scheme outside this list is never connected to.
TRANSPORT_PORTS: dict[str, int] = {"http": 80, "https": 443, "ldap": 389, "ldaps": 636, "smtp": 25, "smtps": 465}


@dataclass(frozen=True)
class OutboundTarget:
    """A host a connector's configuration makes Bastion connect to (besides its HTTP base URL), for the save-time check."""

    field: str  # the config field it comes from, for the person's error message
    scheme: str
    host: str
    port: int


def vet_outbound(host: str, port: int, scheme: str, *, allow_private: bool | None = None) -> list[VettedAddress]:
    """The one guard for every outbound connection: resolve once, vet every answer, return the addresses to connect to.

    Raises UnsafeBaseUrl for an unknown transport, a bad port, a metadata name or a refused answer; socket.gaierror when the
    name does not resolve (callers turn it into the retryable `host_unresolved`).
    """
    if scheme not in TRANSPORT_PORTS:
        raise UnsafeBaseUrl(f"Bastion does not connect over {scheme!r}.")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise UnsafeBaseUrl(f"Port {port!r} is not a TCP port (1-65535).")
    return resolve_vetted(host, port, allow_private=allow_private)


def outbound_target_problem(target: OutboundTarget, *, allow_private: bool | None = None) -> str:
    """Why a configured target is refused ("" when it may be saved); a name that does not resolve now is not refused.

    Every connection vets its own DNS answer again, so a typo or a resolver outage is left to the connection test to report.
    """
    try:
        vet_outbound(target.host, target.port, target.scheme, allow_private=allow_private)
    except UnsafeBaseUrl as exc:
        return exc.message
    except (socket.gaierror, UnicodeError):
        return ""
    return ""


def resolve_vetted(host: str, port: int, *, allow_private: bool | None = None) -> list[VettedAddress]:
    """Resolve `host` once and vet every answer; return them in the order to try.

    Raises UnsafeBaseUrl if any answer is refused, socket.gaierror if the name does not resolve.
    """
    host = check_host_name(host.strip("[]"))
    addresses = _getaddrinfo(host, port)
    # One bad answer spoils the lot: a name that mixes public and internal addresses is not a vendor API.
    check_addresses(host, [address.ip for address in addresses], allow_private=allow_private)
    return addresses


def connect_vetted(
    address: tuple[str, int],
    timeout: float | None = None,
    *,
    source_address: tuple[str, int] | None = None,
    socket_options: Sequence[tuple[int, int, int | bytes]] | None = None,
    allow_private: bool | None = None,
    scheme: str = "https",
) -> socket.socket:
    """Like socket.create_connection (socket.gaierror when the name does not resolve), but only to vetted addresses."""
    host, port = address
    error: OSError | None = None
    for vetted in vet_outbound(host, port, scheme, allow_private=allow_private):
        sock = socket.socket(vetted.family, socket.SOCK_STREAM)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            if timeout is not None:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(vetted.sockaddr)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    raise error or OSError(f"No address to connect to for {host}")


class UrlGuard:
    """The HttpClient `url_guard`: checks each URL, and pins each new connection to the addresses it vetted.

    Called as a function it is the full check (with DNS) for code that opens its own connections.
    """

    def __call__(self, url: str) -> None:
        check_url(url)

    def check_target(self, url: str) -> None:
        """Per request and redirect hop, before DNS; the DNS answer is vetted by `connect` on the socket itself."""
        check_url_target(url)

    def connect(
        self,
        address: tuple[str, int],
        timeout: float | None = None,
        *,
        source_address: tuple[str, int] | None = None,
        socket_options: Sequence[tuple[int, int, int | bytes]] | None = None,
    ) -> socket.socket:
        return connect_vetted(address, timeout, source_address=source_address, socket_options=socket_options)


url_guard = UrlGuard()
