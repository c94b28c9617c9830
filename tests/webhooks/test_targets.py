"""Where webhooks may go: http(s) only, and (by default) names that resolve to public
addresses only; refused at registration with a 422 naming `url`."""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from creativeflow.addresses import refusal_reason
from creativeflow.webhooks.targets import TargetRefused, parse_target_url, resolve_target
from tests.factories import UserFactory


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("0.0.0.0", "unspecified"),  # noqa: S104
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not globally routable"),  # carrier-grade NAT
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:10.0.0.1", "private"),
    ],
)
def test_non_public_addresses_are_refused(address: str, reason: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_accepted(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/", "file:///etc/passwd", "gopher://x/", "ws://example.com/", "//x/y"],
)
def test_only_http_and_https_urls_are_taken(url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        parse_target_url(url)


async def test_a_name_is_resolved_and_every_address_checked() -> None:
    url = httpx.URL("http://localhost:8080/hook")
    with pytest.raises(TargetRefused, match="loopback") as refused:
        await resolve_target(url, allow_private=False, resolve_seconds=2)
    assert refused.value.retryable is False
    allowed = await resolve_target(url, allow_private=True, resolve_seconds=2)
    assert ipaddress.ip_address(allowed.address).is_loopback
    # The request goes to the checked address, naming the host the user registered.
    assert allowed.connect_url.host == allowed.address
    assert allowed.host_header == "localhost:8080" and allowed.server_name == "localhost"


async def test_a_name_that_does_not_resolve_is_refused_as_retryable() -> None:
    url = httpx.URL("http://no-such-host.invalid/hook")
    with pytest.raises(TargetRefused, match="does not resolve") as refused:
        await resolve_target(url, allow_private=False, resolve_seconds=2)
    assert refused.value.retryable is True


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:9000/hook",
        "http://127.0.0.1/hook",
        "http://[::1]:8000/hook",
        "http://169.254.169.254/latest/meta-data/",
        "https://10.0.0.8/hook",
        "http://0.0.0.0:80/",
    ],
)
async def test_private_targets_are_refused_at_registration_by_default(
    users: UserFactory, url: str
) -> None:
    user = await users.create()
    response = await user.post("/api/v1/webhooks", json={"url": url, "event_types": ["*"]})
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "url" and "public addresses only" in error["message"]
    assert (await user.get("/api/v1/webhooks")).json()["total"] == 0


async def test_changing_the_url_to_a_private_target_is_refused(users: UserFactory) -> None:
    user = await users.create()
    # A public address literal: registration resolves nothing and sends nothing.
    created = await user.post(
        "/api/v1/webhooks", json={"url": "https://93.184.215.14/hook", "event_types": ["*"]}
    )
    assert created.status_code == 201, created.text
    webhook_id = created.json()["id"]
    response = await user.patch(
        f"/api/v1/webhooks/{webhook_id}", json={"url": "http://localhost/hook"}
    )
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "url"
    assert (await user.get(f"/api/v1/webhooks/{webhook_id}")).json()["url"] == (
        "https://93.184.215.14/hook"
    )
