"""The contract every data-source type meets: its config model, its connector, its answers.

A source type (`SourceType`) is a name, a config model (a Pydantic model whose `type` field is
the discriminator), and a connector with three operations, each given the config with its
secrets resolved and a `ConnectContext`:

- `check`: one real connection attempt; the server's version where the protocol gives it;
- `discover`: what the source holds (tables, buckets, keys, topics, sheets, videos, ...);
- `preview`: the first rows of one tabular object, with their column types.

Failures are `SourceError`s with a stable code (`SourceErrorCode`); the service turns them into
check results or problems. Drivers are imported inside the connector's methods, so a type
whose optional driver is missing still lists, validates and says which extra to install.

Secret fields are annotated `Secret` (or `Secret | None`): the value is a `SecretStr` or a
reference to a shared credential (`{"credential_id": ...}`); connectors read them with
`reveal()`, after the service has replaced every reference by the credential's secret.
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import ssl
import types
import typing
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Protocol, Union

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from creativeflow.addresses import HostNotResolved, first_refused, resolve_addresses

MASK = "********"
MAX_DISCOVERED = 1000
MAX_PREVIEW_ROWS = 1000


class SourceCategory(StrEnum):
    DATABASE = "database"
    KEY_VALUE = "key_value"
    SEARCH = "search"
    OBJECT_STORAGE = "object_storage"
    FILE = "file"
    API = "api"
    STREAMING = "streaming"
    SAAS = "saas"


class SourceErrorCode(StrEnum):
    CONNECTION_REFUSED = "CONNECTION_REFUSED"
    TIMEOUT = "TIMEOUT"
    AUTH_FAILED = "AUTH_FAILED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    NOT_FOUND = "NOT_FOUND"
    TLS_ERROR = "TLS_ERROR"
    DRIVER_MISSING = "DRIVER_MISSING"
    HOST_NOT_FOUND = "HOST_NOT_FOUND"
    HOST_REFUSED = "HOST_REFUSED"
    UNREACHABLE = "UNREACHABLE"
    PROTOCOL_ERROR = "PROTOCOL_ERROR"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    INVALID_OBJECT = "INVALID_OBJECT"
    ERROR = "ERROR"


class SourceError(Exception):
    """What went wrong talking to a source; `message` is safe to show the source's owner (it
    never holds a secret)."""

    def __init__(self, code: SourceErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# -- secrets ---------------------------------------------------------------------------------


class CredentialRef(BaseModel):
    """A secret held once in `/credentials` and shared by reference."""

    model_config = ConfigDict(extra="forbid")

    credential_id: uuid.UUID


Secret = Annotated[
    SecretStr | CredentialRef,
    Field(
        description='The secret itself (write-only; answered as "********"), or '
        '`{"credential_id": "..."}` to use a shared credential.'
    ),
]


def reveal(value: SecretStr | CredentialRef) -> str:
    """A secret field's plaintext. References are resolved before a connector runs."""
    if isinstance(value, CredentialRef):
        raise RuntimeError("a credential reference reached a connector unresolved")
    return value.get_secret_value()


def reveal_optional(value: SecretStr | CredentialRef | None) -> str | None:
    return None if value is None else reveal(value)


def _is_secret_annotation(annotation: Any) -> bool:
    if typing.get_origin(annotation) is Annotated:  # `Secret` inside `Secret | None`
        return _is_secret_annotation(typing.get_args(annotation)[0])
    return annotation is SecretStr or (
        typing.get_origin(annotation) in (Union, types.UnionType)
        and SecretStr in typing.get_args(annotation)
    )


def models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    """The models an annotation holds (itself, or the members of a union or list)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in typing.get_args(annotation):
        yield from models_in(arg)


def secret_field_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted paths of every secret field a config may have (across auth variants)."""
    paths: list[str] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        annotation = info.annotation
        if _is_secret_annotation(annotation) or any(
            _is_secret_annotation(arg) for arg in typing.get_args(annotation)
        ):
            paths.append(path)
            continue
        for nested in models_in(annotation):
            if nested is CredentialRef:
                continue
            for nested_path in secret_field_paths(nested, f"{path}."):
                if nested_path not in paths:
                    paths.append(nested_path)
    return paths


# -- configs ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """A config that is well-formed but does not fit this installation (a file outside the
    file root, say): `field` is the config path (`path`, `auth.token_url`)."""

    field: str
    message: str


@dataclass(frozen=True, slots=True)
class SourceEnvironment:
    """What config checks that depend on the installation need."""

    file_root: Path


class SourceConfig(BaseModel):
    """Base of every type's config. `type` is the discriminator (a Literal in each subclass)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    type: str

    def environment_problems(self, environment: SourceEnvironment) -> list[ConfigProblem]:
        """Problems only the installation can see (default: none)."""
        return []

    def hosts(self) -> list[tuple[str, int]]:
        """The (host, port) pairs a connection will reach (shown by validation; connectors
        pass each through `ConnectContext.address` when they connect)."""
        return []


# -- results ---------------------------------------------------------------------------------

ColumnType = Literal[
    "integer",
    "number",
    "boolean",
    "string",
    "date",
    "datetime",
    "time",
    "binary",
    "object",
    "array",
    "null",
]


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: ColumnType
    # The source's own name for the type (`varchar(255)`, `BIGINT`), where it has one.
    source_type: str | None = None
    nullable: bool | None = None


@dataclass(frozen=True, slots=True)
class CheckResult:
    server_version: str | None = None
    # Anything else the protocol tells (`{"database": "app", "user": "reader"}`); no secrets.
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DiscoveredObject:
    """One thing a source holds. `name` is what `preview?object=` takes."""

    name: str
    # table, view, collection, key, index, bucket, prefix, file, sheet, topic, queue, stream,
    # subject, endpoint, query, channel, video, ...
    kind: str
    columns: list[Column] | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Discovery:
    objects: list[DiscoveredObject]
    # True when there was more than MAX_DISCOVERED (or the type's own cap).
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Preview:
    columns: list[Column]
    rows: list[dict[str, Any]]
    # True when the object holds more rows than were returned (when the source can tell).
    truncated: bool = False


# -- connecting ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConnectContext:
    timeout_seconds: float
    allow_private_hosts: bool
    file_root: Path

    async def address(self, host: str, port: int) -> str:
        """The address to connect to for `host`: resolved, and refused (HOST_REFUSED) when any
        of its addresses is loopback, private or link-local and private hosts are not allowed.
        Connect to the returned address, not the name, so DNS cannot change in between."""
        try:
            addresses = await resolve_addresses(
                host, port, timeout_seconds=min(self.timeout_seconds, 5.0)
            )
        except HostNotResolved as exc:
            raise SourceError(SourceErrorCode.HOST_NOT_FOUND, str(exc)) from None
        refused = None if self.allow_private_hosts else first_refused(addresses)
        if refused is not None:
            address, reason = refused
            raise SourceError(
                SourceErrorCode.HOST_REFUSED,
                f"the host {host} resolves to {address}, a {reason} address; data sources "
                "must be on public addresses here (DATASOURCE_ALLOW_PRIVATE_HOSTS)",
            )
        return str(addresses[0])

    def local_path(self, relative: str | Path) -> Path:
        """A path inside the file root, symlinks resolved; PERMISSION_DENIED outside it."""
        root = self.file_root.resolve()
        try:
            resolved = (root / relative).resolve()
        except RuntimeError:  # a symlink loop (Python < 3.13)
            raise SourceError(
                SourceErrorCode.INVALID_OBJECT, f"{relative} is a symlink loop"
            ) from None
        if not resolved.is_relative_to(root):
            raise SourceError(
                SourceErrorCode.PERMISSION_DENIED,
                f"{relative} lies outside the data-source file root",
            )
        return resolved


class Connector(Protocol):
    async def check(self, config: Any, context: ConnectContext) -> CheckResult: ...

    async def discover(self, config: Any, context: ConnectContext) -> Discovery: ...

    async def preview(
        self, config: Any, context: ConnectContext, object_name: str, limit: int
    ) -> Preview: ...


@dataclass(frozen=True, slots=True)
class SourceType:
    name: str
    display_name: str
    category: SourceCategory
    config_model: type[SourceConfig]
    connector: Connector
    description: str = ""
    # Import names of the drivers the connector needs, and the extra that installs them.
    drivers: tuple[str, ...] = ()
    extra: str | None = None
    can_discover: bool = True
    can_preview: bool = True

    def missing_drivers(self) -> list[str]:
        return [name for name in self.drivers if importlib.util.find_spec(name) is None]

    def driver_error(self) -> SourceError | None:
        missing = self.missing_drivers()
        if not missing:
            return None
        install = f"pip install 'creativeflow[{self.extra}]'" if self.extra else "its driver"
        return SourceError(
            SourceErrorCode.DRIVER_MISSING,
            f"the {self.name} type needs {', '.join(missing)}, which is not installed here; "
            f"install it with {install}",
        )


class Unsupported:
    """Mixed into a connector whose type cannot discover or preview."""

    not_supported: ClassVar[str] = "this source type"

    async def discover(self, config: Any, context: ConnectContext) -> Discovery:
        raise SourceError(SourceErrorCode.NOT_SUPPORTED, f"{self.not_supported} has no discovery")

    async def preview(
        self, config: Any, context: ConnectContext, object_name: str, limit: int
    ) -> Preview:
        raise SourceError(SourceErrorCode.NOT_SUPPORTED, f"{self.not_supported} has no preview")


def os_cause(exc: BaseException) -> OSError | None:
    """The OSError (refused, reset, TLS, timed out) behind a driver's error, from its cause
    and context chain and any exception group in it (anyio's "All connection attempts
    failed" holds the refusals); a specific one (ConnectionRefusedError, SSLError) before a
    bare OSError."""
    found: list[OSError] = []
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError):
            found.append(current)
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    specific = [error for error in found if type(error) is not OSError]
    return next(iter(specific or found), None)


def network_error(exc: BaseException, target: str) -> SourceError:
    """A socket-level failure as a SourceError (refused, timed out, TLS, DNS, unreachable)."""
    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return SourceError(SourceErrorCode.TIMEOUT, f"{target} did not answer in time")
    if isinstance(exc, ConnectionRefusedError):
        return SourceError(SourceErrorCode.CONNECTION_REFUSED, f"{target} refused the connection")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return SourceError(
            SourceErrorCode.TLS_ERROR, f"{target}: certificate not trusted ({exc.verify_message})"
        )
    if isinstance(exc, ssl.SSLError):
        return SourceError(SourceErrorCode.TLS_ERROR, f"{target}: TLS failed ({exc.reason})")
    if isinstance(exc, socket.gaierror):
        return SourceError(SourceErrorCode.HOST_NOT_FOUND, f"{target} does not resolve")
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return SourceError(SourceErrorCode.PROTOCOL_ERROR, f"{target} closed the connection")
    if isinstance(exc, OSError):
        return SourceError(SourceErrorCode.UNREACHABLE, f"{target} is unreachable ({exc})")
    return SourceError(SourceErrorCode.ERROR, f"{target}: {type(exc).__name__}")
