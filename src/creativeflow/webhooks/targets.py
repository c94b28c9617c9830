"""Where a webhook may be sent: http(s) URLs whose host resolves only to public addresses.

The check resolves the name and refuses when ANY address is private, loopback, link-local,
multicast, reserved, unspecified or otherwise not global (unless WEBHOOK_ALLOW_PRIVATE_TARGETS).
The delivery then connects to the very address that was checked, sending the name in the Host
header (and as the TLS server name), so a DNS answer that changes between the check and the
connection (DNS rebinding) cannot point the request somewhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from creativeflow.addresses import HostNotResolved, first_refused, resolve_addresses

MAX_URL_LENGTH = 2048
_SCHEMES = ("http", "https")


class TargetRefused(Exception):
    """The URL may not receive webhooks; the message says why (safe to show its owner)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        # A name that does not resolve now may resolve later; a private address stays private.
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class ResolvedTarget:
    url: httpx.URL  # as registered
    address: str  # the checked IP address the request connects to

    @property
    def connect_url(self) -> httpx.URL:
        """The URL with its host replaced by the checked address."""
        return self.url.copy_with(host=self.address)

    @property
    def host_header(self) -> str:
        return self.url.netloc.decode("ascii")

    @property
    def server_name(self) -> str:
        return self.url.raw_host.decode("ascii")


def parse_target_url(raw: str) -> httpx.URL:
    """The URL if it is one a webhook may use; `ValueError` with the reason otherwise."""
    if len(raw) > MAX_URL_LENGTH:
        raise ValueError(f"must be at most {MAX_URL_LENGTH} characters")
    try:
        url = httpx.URL(raw.strip())
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise ValueError(f"is not a valid URL ({exc})") from None
    if url.scheme not in _SCHEMES:
        raise ValueError("must be an http:// or https:// URL")
    if not url.host:
        raise ValueError("must name a host")
    if url.userinfo:
        raise ValueError("must not carry a user name or password; verify the signature instead")
    if url.fragment:
        raise ValueError("must not have a #fragment")
    return url


async def resolve_target(
    url: httpx.URL, *, allow_private: bool, resolve_seconds: float
) -> ResolvedTarget:
    """Resolve the URL's host and check every address; the first address to connect to."""
    host = url.raw_host.decode("ascii")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        addresses = await resolve_addresses(host, port, timeout_seconds=resolve_seconds)
    except HostNotResolved as exc:
        raise TargetRefused(str(exc), retryable=True) from exc
    refused = None if allow_private else first_refused(addresses)
    if refused is not None:
        address, reason = refused
        raise TargetRefused(
            f"the host {host} resolves to {address}, a {reason} address; webhooks go "
            "to public addresses only"
        )
    return ResolvedTarget(url=url, address=str(addresses[0]))
