"""The registry's tables.

`credentials`: a secret held once (a password, token, key file, OAuth client secret) that
sources reference by id; rotating it changes every source that uses it.
`data_sources`: a registered source: its type, its config without secrets (a secret field is
null, or a `{"credential_id": ...}` reference), its own secrets encrypted apart (`secrets`:
config path → ciphertext bound to the row and the path), its health and check schedule.
`data_source_credentials`: which sources use which credential.
`data_source_checks`: the history of connection tests, manual and scheduled.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from creativeflow.db.base import Base, Entity
from creativeflow.db.types import JSONDocument, UTCDateTime, sql_values


class CredentialKind(StrEnum):
    PASSWORD = "password"
    TOKEN = "token"
    API_KEY = "api_key"
    KEY_FILE = "key_file"
    OAUTH_CLIENT = "oauth_client"


class SourceStatus(StrEnum):
    UNKNOWN = "unknown"  # never tested, or changed since the last test
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


class CheckTrigger(StrEnum):
    MANUAL = "manual"
    SCHEDULED = "scheduled"


class Credential(Entity):
    __tablename__ = "credentials"
    __table_args__ = (
        UniqueConstraint("owner_id", "name", name="uq_credentials_owner_id_name"),
        CheckConstraint(f"kind IN ({sql_values(CredentialKind)})", name="kind"),
    )

    owner_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    description: Mapped[str | None] = mapped_column(String(1000))
    # Who the secret is for (a user name, an OAuth client id): shown, never secret.
    identity: Mapped[str | None] = mapped_column(String(500))
    secret_ciphertext: Mapped[str] = mapped_column(Text, nullable=False)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DataSource(Entity):
    __tablename__ = "data_sources"
    __table_args__ = (
        UniqueConstraint("owner_id", "name", name="uq_data_sources_owner_id_name"),
        CheckConstraint(f"status IN ({sql_values(SourceStatus)})", name="status"),
        Index("ix_data_sources_owner_id_created_at", "owner_id", "created_at"),
        # The scheduler's question: which sources are due for a check.
        Index("ix_data_sources_next_check_at", "next_check_at"),
    )

    owner_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(String(1000))
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    category: Mapped[str] = mapped_column(String(32), nullable=False)
    config: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False)
    secrets: Mapped[dict[str, str]] = mapped_column(JSONDocument, nullable=False, default=dict)
    tags: Mapped[list[str]] = mapped_column(JSONDocument, nullable=False, default=list)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=SourceStatus.UNKNOWN)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error_code: Mapped[str | None] = mapped_column(String(32))
    last_error_message: Mapped[str | None] = mapped_column(String(1000))
    last_latency_ms: Mapped[int | None] = mapped_column(Integer)
    server_version: Mapped[str | None] = mapped_column(String(200))
    check_interval_seconds: Mapped[int | None] = mapped_column(Integer)
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DataSourceCredential(Base):
    """A source's config references a credential: the credential cannot be deleted while any
    source uses it (RESTRICT), and its rotation reaches exactly these sources."""

    __tablename__ = "data_source_credentials"
    __table_args__ = (Index("ix_data_source_credentials_credential_id", "credential_id"),)

    source_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("data_sources.id", ondelete="CASCADE"), primary_key=True
    )
    credential_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("credentials.id", ondelete="RESTRICT"), primary_key=True
    )


class DataSourceCheck(Entity):
    __tablename__ = "data_source_checks"
    __table_args__ = (
        Index("ix_data_source_checks_source_id_created_at", "source_id", "created_at"),
        CheckConstraint(f"trigger IN ({sql_values(CheckTrigger)})", name="trigger"),
    )

    source_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("data_sources.id", ondelete="CASCADE"), nullable=False
    )
    ok: Mapped[bool] = mapped_column(Boolean, nullable=False)
    trigger: Mapped[str] = mapped_column(String(16), nullable=False)
    error_code: Mapped[str | None] = mapped_column(String(32))
    message: Mapped[str | None] = mapped_column(String(1000))
    latency_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    server_version: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[dict[str, Any]] = mapped_column(JSONDocument, nullable=False, default=dict)
    job_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("jobs.id", ondelete="SET NULL")
    )
