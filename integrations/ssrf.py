"""SSRF guard for outbound vendor calls: refuse private, loopback, link-local and cloud-metadata targets."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings

from integrations.errors import UnsafeBaseUrl

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

Resolver = Callable[[str, int], list[str]]


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UnsafeBaseUrl(f"Cannot resolve host {host!r}: {exc.strerror or exc}.") from exc
    return sorted({str(info[4][0]) for info in infos})


def _is_private(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
        or address in ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT
    )


def check_url(url: str, *, allow_private: bool | None = None, resolver: Resolver = _resolve) -> None:
    """Raise UnsafeBaseUrl unless `url` is http(s) and every address it resolves to is public (or private is allowed)."""
    allow = settings.BASTION_ALLOW_PRIVATE_BASE_URLS if allow_private is None else allow_private
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeBaseUrl(f"Only http and https URLs are allowed, not {parts.scheme or 'no scheme'!r}.")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise UnsafeBaseUrl("The URL has no host.")
    if parts.username or parts.password:
        raise UnsafeBaseUrl("URLs with embedded credentials are not allowed; store credentials as a credential.")
    if host in METADATA_HOSTS:
        raise UnsafeBaseUrl(f"{host} is a cloud metadata service and is never allowed.")
    try:
        addresses = [host] if _literal(host) else resolver(host, parts.port or (443 if parts.scheme == "https" else 80))
    except ValueError as exc:
        raise UnsafeBaseUrl(str(exc)) from exc
    for raw in addresses:
        address = ipaddress.ip_address(raw.split("%", 1)[0])
        if address in METADATA_ADDRESSES or (isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped in METADATA_ADDRESSES):
            raise UnsafeBaseUrl(f"{host} points at a cloud metadata address ({address}); refused.")
        if _is_private(address) and not allow:
            raise UnsafeBaseUrl(
                f"{host} resolves to a private, loopback or link-local address ({address}). "
                "Set BASTION_ALLOW_PRIVATE_BASE_URLS=true only if this server is meant to reach internal hosts."
            )


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def url_guard(url: str) -> None:
    """The HttpClient `url_guard`: applied to every request and every redirect hop."""
    check_url(url)
