"""Request and response models of the data-source and credential APIs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from creativeflow.datasources.base import Column, DiscoveredObject, Discovery, Preview
from creativeflow.datasources.connections import CheckOutcome
from creativeflow.datasources.models import (
    CheckTrigger,
    Credential,
    CredentialKind,
    DataSourceCheck,
    SourceStatus,
)

MAX_TAGS = 20
MAX_INTERVAL_SECONDS = 7 * 24 * 3600
MAX_IMPORT = 200

CONFIG_DOC = (
    "The source's settings, with `type` naming its type; `GET /datasources/types` gives each "
    'type\'s JSON Schema. Secret fields take the secret itself or `{"credential_id": ...}`.'
)


def _clean_tags(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    tags: list[str] = []
    for tag in value:
        tag = tag.strip()
        if not tag or len(tag) > 50:
            raise ValueError("each tag must be 1-50 characters")
        if tag not in tags:
            tags.append(tag)
    return tags


class FieldProblem(BaseModel):
    field: str
    message: str


# -- types ----------------------------------------------------------------------------------


class DriverRead(BaseModel):
    installed: bool
    missing: list[str] = Field(description="Python modules the type needs that are not here")
    extra: str | None = Field(description="The extra that installs them")
    install: str | None = Field(description="The command that installs them")


class SourceTypeRead(BaseModel):
    name: str
    display_name: str
    category: str
    description: str
    config_schema: dict[str, Any] = Field(description="JSON Schema of the type's config")
    secret_fields: list[str] = Field(description="Config paths that hold secrets")
    driver: DriverRead
    can_test: bool
    can_discover: bool
    can_preview: bool


# -- sources --------------------------------------------------------------------------------


class DataSourceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=1000)
    config: dict[str, Any] = Field(description=CONFIG_DOC, examples=[{"type": "postgresql"}])
    tags: list[str] = Field(default_factory=list, max_length=MAX_TAGS)
    check_interval_seconds: int | None = Field(
        default=None,
        le=MAX_INTERVAL_SECONDS,
        description="Run a connection check this often (at least DATASOURCE_MIN_CHECK_INTERVAL_"
        "SECONDS, 60 by default); null: only when asked",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        return _clean_tags(value) or []


class DataSourceUpdate(BaseModel):
    """Only the fields sent change. In `config`, a secret field left out or sent as
    `"********"` keeps its stored value; `null` clears it."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=1000)
    config: dict[str, Any] | None = Field(default=None, description=CONFIG_DOC)
    tags: list[str] | None = Field(default=None, max_length=MAX_TAGS)
    check_interval_seconds: int | None = Field(default=None, le=MAX_INTERVAL_SECONDS)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        return value.strip() if value is not None else None

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        return _clean_tags(value)


class ConfigInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    config: dict[str, Any] = Field(description=CONFIG_DOC)


class SecretFieldRead(BaseModel):
    path: str
    set: bool = Field(description="Whether a value (its own, or a credential) is set")
    credential_id: uuid.UUID | None = None


class LastCheckRead(BaseModel):
    checked_at: datetime
    ok: bool
    error_code: str | None
    message: str | None
    latency_ms: int | None
    server_version: str | None


class DataSourceRead(BaseModel):
    id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    description: str | None
    type: str
    category: str
    config: dict[str, Any] = Field(description='The config; set secrets read "********"')
    secrets: list[SecretFieldRead]
    tags: list[str]
    status: SourceStatus
    last_check: LastCheckRead | None
    check_interval_seconds: int | None
    next_check_at: datetime | None
    created_at: datetime
    updated_at: datetime
    created_by: uuid.UUID | None
    updated_by: uuid.UUID | None


class ConfigValidationRead(BaseModel):
    valid: bool
    type: str | None
    errors: list[FieldProblem]
    reaches: list[str] = Field(
        default_factory=list,
        description="The host:port pairs a connection will reach (each one passes the address "
        "guard when it is made)",
    )


# -- checks ---------------------------------------------------------------------------------


class TestResultRead(BaseModel):
    ok: bool
    status: Literal["ok", "failed"]
    latency_ms: int
    server_version: str | None
    error_code: str | None = Field(
        description="CONNECTION_REFUSED, TIMEOUT, AUTH_FAILED, NOT_FOUND, TLS_ERROR, "
        "DRIVER_MISSING, HOST_REFUSED, HOST_NOT_FOUND, PERMISSION_DENIED, PROTOCOL_ERROR, ..."
    )
    message: str | None
    details: dict[str, Any]
    source_status: SourceStatus | None = Field(
        default=None, description="The saved source's status after this check"
    )

    @classmethod
    def of(cls, outcome: CheckOutcome, source_status: SourceStatus | None = None) -> TestResultRead:
        return cls(
            ok=outcome.ok,
            status="ok" if outcome.ok else "failed",
            latency_ms=outcome.latency_ms,
            server_version=outcome.server_version,
            error_code=outcome.error_code,
            message=outcome.message,
            details=outcome.details,
            source_status=source_status,
        )


class CheckRead(BaseModel):
    id: uuid.UUID
    checked_at: datetime
    ok: bool
    trigger: CheckTrigger
    error_code: str | None
    message: str | None
    latency_ms: int
    server_version: str | None
    details: dict[str, Any]
    job_id: uuid.UUID | None

    @classmethod
    def of(cls, check: DataSourceCheck) -> CheckRead:
        return cls(
            id=check.id,
            checked_at=check.created_at,
            ok=check.ok,
            trigger=CheckTrigger(check.trigger),
            error_code=check.error_code,
            message=check.message,
            latency_ms=check.latency_ms,
            server_version=check.server_version,
            details=check.details,
            job_id=check.job_id,
        )


# -- discovery and preview ------------------------------------------------------------------


class ColumnRead(BaseModel):
    name: str
    type: str
    source_type: str | None = None
    nullable: bool | None = None

    @classmethod
    def of(cls, column: Column) -> ColumnRead:
        return cls(
            name=column.name,
            type=column.type,
            source_type=column.source_type,
            nullable=column.nullable,
        )


class DiscoveredObjectRead(BaseModel):
    name: str = Field(description="What `preview?object=` takes")
    kind: str
    columns: list[ColumnRead] | None
    details: dict[str, Any]

    @classmethod
    def of(cls, found: DiscoveredObject) -> DiscoveredObjectRead:
        return cls(
            name=found.name,
            kind=found.kind,
            columns=None if found.columns is None else [ColumnRead.of(c) for c in found.columns],
            details=found.details,
        )


class DiscoveryRead(BaseModel):
    objects: list[DiscoveredObjectRead]
    count: int
    truncated: bool

    @classmethod
    def of(cls, discovery: Discovery) -> DiscoveryRead:
        return cls(
            objects=[DiscoveredObjectRead.of(found) for found in discovery.objects],
            count=len(discovery.objects),
            truncated=discovery.truncated,
        )


class PreviewRead(BaseModel):
    object: str
    columns: list[ColumnRead]
    rows: list[dict[str, Any]]
    row_count: int
    truncated: bool

    @classmethod
    def of(cls, object_name: str, preview: Preview) -> PreviewRead:
        return cls(
            object=object_name,
            columns=[ColumnRead.of(c) for c in preview.columns],
            rows=preview.rows,
            row_count=len(preview.rows),
            truncated=preview.truncated,
        )


# -- export and import ----------------------------------------------------------------------


class ExportedSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=1000)
    type: str
    tags: list[str] = Field(default_factory=list, max_length=MAX_TAGS)
    check_interval_seconds: int | None = Field(default=None, le=MAX_INTERVAL_SECONDS)
    config: dict[str, Any] = Field(description="The config with every secret field null")
    secrets_needed: list[str] = Field(
        default_factory=list, description="Secret fields that were set: import asks for them"
    )


class ExportDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["creativeflow.datasources"] = "creativeflow.datasources"
    version: Literal[1] = 1
    exported_at: datetime | None = None
    sources: list[ExportedSource] = Field(max_length=MAX_IMPORT)


class ImportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document: ExportDocument
    secrets: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description='Per source name, its secrets by config path: {"Sales DB": {"password": '
        '"..."}} (or {"credential_id": ...} as the value)',
    )
    on_conflict: Literal["fail", "skip"] = Field(
        default="fail", description="A name you already use: fail the import (409), or skip it"
    )


class ImportResultRead(BaseModel):
    created: list[DataSourceRead]
    skipped: list[str]


# -- credentials ----------------------------------------------------------------------------


class CredentialCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: CredentialKind
    secret: SecretStr = Field(
        min_length=1,
        max_length=65536,
        description="The password, token, API key, key file (JSON or PEM) or OAuth client "
        "secret; write-only",
    )
    identity: str | None = Field(
        default=None, max_length=500, description="Who it is for (user name, client id): shown"
    )
    description: str | None = Field(default=None, max_length=1000)


class CredentialUpdate(BaseModel):
    """Only the fields sent change; the secret changes through `/rotate`."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    identity: str | None = Field(default=None, max_length=500)
    description: str | None = Field(default=None, max_length=1000)


class CredentialRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    secret: SecretStr = Field(min_length=1, max_length=65536)


class SourceRef(BaseModel):
    id: uuid.UUID
    name: str
    type: str


class CredentialRead(BaseModel):
    id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    kind: CredentialKind
    identity: str | None
    description: str | None
    secret: Literal["********"] = Field(default="********", description="Never returned")
    rotated_at: datetime | None
    used_by: list[SourceRef] | None = Field(
        default=None, description="The sources that use it (on single reads)"
    )
    created_at: datetime
    updated_at: datetime
    created_by: uuid.UUID | None
    updated_by: uuid.UUID | None

    @classmethod
    def of(cls, credential: Credential, used_by: list[SourceRef] | None = None) -> CredentialRead:
        return cls(
            id=credential.id,
            owner_id=credential.owner_id,
            name=credential.name,
            kind=CredentialKind(credential.kind),
            identity=credential.identity,
            description=credential.description,
            rotated_at=credential.rotated_at,
            used_by=used_by,
            created_at=credential.created_at,
            updated_at=credential.updated_at,
            created_by=credential.created_by,
            updated_by=credential.updated_by,
        )
