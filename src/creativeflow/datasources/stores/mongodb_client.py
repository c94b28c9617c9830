"""Reaching a MongoDB deployment: the servers to try (from the config, or from a
mongodb+srv:// cluster's DNS records), a client for one of them, and pymongo's errors as
SourceErrors.

pymongo would resolve an SRV record itself and connect to whatever it lists, past the address
guard; and the SRV name usually has no address of its own (Atlas), so checking that name would
check nothing. So `plan` asks DNS for `_mongodb._tcp.<name>` (and the TXT record's
`replicaSet`/`authSource`) with dnspython, which pymongo installs, and checks every listed
server like a configured one.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from creativeflow.datasources.base import (
    ConnectContext,
    SourceError,
    SourceErrorCode,
    network_error,
    os_cause,
    reveal_optional,
)
from creativeflow.datasources.stores.common import safe_text

if TYPE_CHECKING:
    from creativeflow.datasources.stores.mongodb import MongoDbConfig

MAX_MEMBERS = 50
POOL_SIZE = 8

# OperationFailure codes (src/mongo/base/error_codes.yml).
UNAUTHORIZED = 13
_AUTHENTICATION_FAILED = 18
_NAMESPACE_NOT_FOUND = 26
_MAX_TIME_EXPIRED = 50

# Failures worth trying the next member for; anything else would fail there the same way.
NEXT_MEMBER = {
    SourceErrorCode.CONNECTION_REFUSED,
    SourceErrorCode.TIMEOUT,
    SourceErrorCode.UNREACHABLE,
    SourceErrorCode.PROTOCOL_ERROR,
    SourceErrorCode.TLS_ERROR,
}


# The only options a TXT record may set (the Initial DNS Seedlist Discovery spec).
_TXT_OPTIONS = ("authSource", "replicaSet", "loadBalanced")


def srv_target_allowed(target: str, srv: str) -> bool:
    """Whether an SRV target lies in the SRV name's domain, as the spec requires (else a
    record could send the client anywhere): below the parent domain for names of three or
    more labels, below the name itself for shorter ones."""
    target, srv = target.rstrip(".").lower(), srv.rstrip(".").lower()
    labels = srv.split(".")
    domain = srv if len(labels) < 3 else ".".join(labels[1:])
    return target != srv and target.endswith("." + domain)


async def srv_members(
    srv: str, timeout_seconds: float
) -> tuple[list[tuple[str, int]], dict[str, str]]:
    """The (host, port) of every server the SRV record lists, and the TXT record's options."""
    import dns.asyncresolver
    import dns.exception
    import dns.resolver

    record = f"_mongodb._tcp.{srv}"
    try:
        resolver = dns.asyncresolver.Resolver()
        answer = await resolver.resolve(record, "SRV", lifetime=timeout_seconds)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        raise SourceError(
            SourceErrorCode.HOST_NOT_FOUND, f"{srv} has no SRV record ({record})"
        ) from None
    except dns.exception.Timeout:
        raise SourceError(
            SourceErrorCode.TIMEOUT, f"the DNS lookup of {record} did not answer in time"
        ) from None
    except dns.exception.DNSException as exc:
        raise SourceError(
            SourceErrorCode.HOST_NOT_FOUND,
            f"the DNS lookup of {record} failed ({type(exc).__name__})",
        ) from None
    targets: list[tuple[str, int]] = []
    for item in answer:
        target = item.target.to_text(omit_final_dot=True).lower()
        if not srv_target_allowed(target, srv):
            raise SourceError(
                SourceErrorCode.PROTOCOL_ERROR,
                f"the SRV record of {srv} lists {target}, which is outside its domain",
            )
        targets.append((target, int(item.port)))
    options: dict[str, str] = {}
    try:
        texts = await resolver.resolve(srv, "TXT", lifetime=timeout_seconds)
    except dns.exception.DNSException:
        texts = None  # no TXT record: no options
    for text in texts or ():
        joined = b"".join(text.strings).decode("ascii", "replace")
        options.update((key, value) for key, value in parse_qsl(joined) if key in _TXT_OPTIONS)
    return sorted(targets)[:MAX_MEMBERS], options


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    port: int
    connect_to: str  # the checked address, or the name when TLS must verify it

    @property
    def label(self) -> str:
        return f"{self.name}:{self.port}"


@dataclass(frozen=True, slots=True)
class Plan:
    members: list[Member]
    replica_set: str | None
    auth_source: str


async def plan(config: MongoDbConfig, context: ConnectContext) -> Plan:
    replica_set, auth_source = config.replica_set, config.auth_source
    if config.srv is not None:
        # The SRV (and TXT) lookup is made here, not in the driver, so that every server the
        # cluster lists passes the address guard before anything connects to it.
        targets, options = await srv_members(config.srv, min(context.timeout_seconds, 5.0))
        replica_set = replica_set or options.get("replicaSet")
        if "auth_source" not in config.model_fields_set:
            auth_source = options.get("authSource", auth_source)
    else:
        targets = [(server.host, server.port) for server in config.servers]
    members = []
    for host, port in targets:
        address = await context.address(host, port)
        # pymongo verifies the certificate against the host it connects to and has no way to
        # name another: with TLS on it connects by name (the guard checked that name's
        # addresses just now; the driver resolves it again).
        members.append(Member(host, port, host if config.tls.enabled else address))
    return Plan(members[:MAX_MEMBERS], replica_set, auth_source)


@contextmanager
def _ca_file(pem: str | None) -> Iterator[str | None]:
    """pymongo reads a CA only from a file (when the client is built): a temporary one."""
    if pem is None:
        yield None
        return
    handle, path = tempfile.mkstemp(suffix=".pem", prefix="creativeflow-ca-")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(pem)
        yield path
    finally:
        os.unlink(path)


def client_for(config: MongoDbConfig, route: Plan, member: Member, seconds: float) -> Any:
    from pymongo import AsyncMongoClient

    milliseconds = max(int(seconds * 1000), 100)
    host = f"[{member.connect_to}]" if ":" in member.connect_to else member.connect_to
    options: dict[str, Any] = {
        "directConnection": True,
        "serverSelectionTimeoutMS": milliseconds,
        "connectTimeoutMS": milliseconds,
        "socketTimeoutMS": milliseconds,
        "timeoutMS": milliseconds,
        "retryReads": False,
        "maxPoolSize": POOL_SIZE,
        "appname": "CreativeFlow",
        "tz_aware": True,
        "uuidRepresentation": "standard",
        "datetime_conversion": "DATETIME_AUTO",
        "unicode_decode_error_handler": "replace",
        "tls": config.tls.enabled,
    }
    if config.username is not None:
        options.update(
            username=config.username,
            password=reveal_optional(config.password),
            authSource=route.auth_source,
        )
    if route.replica_set is not None:
        options["replicaSet"] = route.replica_set
    if config.tls.enabled and not config.tls.verify:
        options["tlsInsecure"] = True
    with _ca_file(config.tls.ca_certificate if config.tls.enabled else None) as ca_file:
        if ca_file is not None:
            options["tlsCAFile"] = ca_file
        return AsyncMongoClient(host=host, port=member.port, **options)


def selection_error(client: Any, label: str) -> SourceError:
    """Why server selection timed out, from what the monitor saw of the server."""
    from pymongo.errors import ConfigurationError, NetworkTimeout, ProtocolError

    for description in client.topology_description.server_descriptions().values():
        error = description.error
        if error is None:
            continue
        text = str(error)
        if isinstance(error, NetworkTimeout):
            break
        if isinstance(error, ProtocolError):
            return SourceError(
                SourceErrorCode.PROTOCOL_ERROR, f"{label} does not speak MongoDB's protocol"
            )
        if f"[Errno {errno.ECONNREFUSED}]" in text or "refused" in text.lower():
            return SourceError(
                SourceErrorCode.CONNECTION_REFUSED, f"{label} refused the connection"
            )
        if "SSL" in text or "certificate" in text.lower():
            return SourceError(
                SourceErrorCode.TLS_ERROR, f"{label}: TLS failed ({safe_text(text)})"
            )
        if isinstance(error, ConfigurationError):  # a member of another replica set
            return SourceError(SourceErrorCode.NOT_FOUND, f"{label}: {safe_text(text)}")
        return SourceError(SourceErrorCode.UNREACHABLE, f"{label}: {safe_text(text)}")
    return SourceError(SourceErrorCode.TIMEOUT, f"{label} did not answer in time")


def mongo_error(exc: Exception, member: Member, client: Any, config: MongoDbConfig) -> SourceError:
    from pymongo.errors import (
        AutoReconnect,
        ConfigurationError,
        ExecutionTimeout,
        NetworkTimeout,
        OperationFailure,
        ProtocolError,
        PyMongoError,
        ServerSelectionTimeoutError,
    )

    label = member.label
    password = reveal_optional(config.password)
    if isinstance(exc, ServerSelectionTimeoutError | TimeoutError):
        # No server selected in time (by pymongo, or by the attempt's own time limit): what
        # the monitor saw of the server tells why.
        return selection_error(client, label)
    if isinstance(exc, ExecutionTimeout | NetworkTimeout):
        return SourceError(SourceErrorCode.TIMEOUT, f"{label} did not answer in time")
    if isinstance(exc, OperationFailure):
        reason = safe_text(str((exc.details or {}).get("errmsg", exc)), password)
        if exc.code == _AUTHENTICATION_FAILED:
            return SourceError(
                SourceErrorCode.AUTH_FAILED,
                f"{label} rejected the user name or password of {config.username!r} "
                f"(authSource {config.auth_source})",
            )
        if exc.code == UNAUTHORIZED:
            return SourceError(SourceErrorCode.PERMISSION_DENIED, f"{label}: {reason}")
        if exc.code == _NAMESPACE_NOT_FOUND:
            return SourceError(SourceErrorCode.NOT_FOUND, f"{label}: {reason}")
        if exc.code == _MAX_TIME_EXPIRED:
            return SourceError(SourceErrorCode.TIMEOUT, f"{label} did not answer in time")
        return SourceError(SourceErrorCode.ERROR, f"{label}: {reason} (code {exc.code})")
    if isinstance(exc, ProtocolError):
        return SourceError(
            SourceErrorCode.PROTOCOL_ERROR, f"{label} does not speak MongoDB's protocol"
        )
    if isinstance(exc, ConfigurationError):
        return SourceError(SourceErrorCode.ERROR, f"{label}: {safe_text(str(exc), password)}")
    cause = os_cause(exc)
    if cause is not None:
        return network_error(cause, label)
    if isinstance(exc, AutoReconnect):
        return SourceError(SourceErrorCode.UNREACHABLE, f"{label}: {safe_text(str(exc), password)}")
    if isinstance(exc, PyMongoError | OSError):
        return network_error(exc, label)
    return SourceError(SourceErrorCode.ERROR, f"{label}: {type(exc).__name__}")
