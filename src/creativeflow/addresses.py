"""Which network addresses outbound connections may reach, and host names resolved to them.

Webhooks and data-source connection tests are requests a user aims: left unchecked they reach
the platform's own loopback services, the private network behind it, or a cloud metadata
address. Both resolve the host, refuse it when ANY of its addresses is not public (unless a
setting allows private hosts), and then connect to the checked address itself, so a DNS answer
that changes in between (rebinding) cannot redirect them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class HostNotResolved(Exception):
    """The name has no address now (it may have one later)."""


def refusal_reason(address: IPAddress) -> str | None:
    """Why an address is not public (loopback, private, ...), or None when it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return refusal_reason(address.ipv4_mapped)
    for reason, flagged in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("not globally routable", not address.is_global),
    ):
        if flagged:
            return reason
    return None


async def resolve_addresses(host: str, port: int, *, timeout_seconds: float) -> list[IPAddress]:
    """Every distinct address of `host` (a literal address is its own answer)."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout_seconds):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        raise HostNotResolved(f"the host {host} does not resolve ({exc})") from exc
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        # Drop an IPv6 zone ("fe80::1%eth0"): the address itself is what is judged.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise HostNotResolved(f"the host {host} has no address")
    return addresses


def first_refused(addresses: list[IPAddress]) -> tuple[IPAddress, str] | None:
    """The first address that is not public, with the reason."""
    for address in addresses:
        reason = refusal_reason(address)
        if reason is not None:
            return address, reason
    return None
