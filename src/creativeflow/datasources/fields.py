"""Config field types every family shares, each rejecting what users get wrong with a message
that says what is expected: host names, ports, database and bucket names, URLs, TLS options."""

from __future__ import annotations

import ipaddress
import re
import ssl
from typing import Annotated

import httpx
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def _host_name(value: str) -> str:
    host = value.strip()
    if not host:
        raise ValueError("must name a host")
    if "://" in host or "/" in host:
        raise ValueError("must be a host name or IP address, not a URL")
    if ":" in host and not host.startswith("["):
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            raise ValueError("must not carry a port; put the port in `port`") from None
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    name = host.rstrip(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise ValueError(
            "is not a valid host name (letters, digits and hyphens in dot-separated labels)"
        )
    return name.lower()


HostName = Annotated[str, AfterValidator(_host_name), Field(max_length=253)]
Port = Annotated[int, Field(ge=1, le=65535, description="TCP port, 1-65535")]

_DATABASE_NAME = re.compile(r"^[A-Za-z0-9_$][A-Za-z0-9_$\-.]{0,62}$")


def _database_name(value: str) -> str:
    if not _DATABASE_NAME.match(value):
        raise ValueError(
            "must be 1-63 letters, digits, '_', '$', '-' or '.', not starting with '-' or '.'"
        )
    return value


DatabaseName = Annotated[str, AfterValidator(_database_name)]

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


def _bucket_name(value: str) -> str:
    """S3's (and GCS's) bucket naming rules."""
    if not _BUCKET.match(value):
        raise ValueError(
            "must be 3-63 lowercase letters, digits, '.' or '-', starting and ending with a "
            "letter or digit"
        )
    if ".." in value or ".-" in value or "-." in value:
        raise ValueError("must not have '..', '.-' or '-.'")
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return value
    raise ValueError("must not be an IP address")


BucketName = Annotated[str, AfterValidator(_bucket_name)]


def url_validator(*schemes: str) -> AfterValidator:
    """A URL with one of `schemes` and a host, without credentials in it."""

    def check(value: str) -> str:
        try:
            url = httpx.URL(value.strip())
        except (httpx.InvalidURL, ValueError, TypeError) as exc:
            raise ValueError(f"is not a valid URL ({exc})") from None
        if url.scheme not in schemes:
            raise ValueError(f"must be a {' or '.join(s + '://' for s in schemes)} URL")
        if not url.host:
            raise ValueError("must name a host")
        if url.port is not None and not 1 <= url.port <= 65535:
            raise ValueError("must have a port of 1-65535")
        _host_name(url.host)
        if url.userinfo:
            raise ValueError("must not carry a user name or password; use the auth fields")
        return str(url)

    return AfterValidator(check)


HttpUrl = Annotated[str, url_validator("http", "https"), Field(max_length=2048)]


def url_host_port(url: str) -> tuple[str, int]:
    parsed = httpx.URL(url)
    return parsed.host, parsed.port or (443 if parsed.scheme in ("https", "wss") else 80)


def _pem_certificate(value: str) -> str:
    if "-----BEGIN CERTIFICATE-----" not in value:
        raise ValueError("must be a PEM certificate (-----BEGIN CERTIFICATE-----)")
    try:
        ssl.create_default_context(cadata=value)
    except ssl.SSLError as exc:
        raise ValueError(f"is not a certificate this platform can read ({exc.reason})") from None
    return value


PemCertificate = Annotated[str, AfterValidator(_pem_certificate), Field(max_length=65536)]


class TlsOptions(BaseModel):
    """TLS for a connection. `verify` off accepts any certificate (never on a public network)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    verify: bool = True
    ca_certificate: PemCertificate | None = Field(
        default=None, description="PEM of the CA that signed the server's certificate"
    )

    @model_validator(mode="after")
    def _consistent(self) -> TlsOptions:
        if not self.enabled and (self.ca_certificate or not self.verify):
            raise ValueError("ca_certificate and verify apply only when `enabled` is true")
        return self

    def context(self, server_name: str | None = None) -> ssl.SSLContext | None:
        """An SSL context for these options, or None when TLS is off."""
        if not self.enabled:
            return None
        context = ssl.create_default_context(cadata=self.ca_certificate)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context
