"""Data-source rules: registering, changing and reading sources; their secrets; their checks.

A source belongs to its owner (another user's is 404 DATASOURCE_NOT_FOUND); an instance
administrator sees and manages every source. Secrets are encrypted at rest, each bound to its
row and config path, and never leave this module except into a connector's config.

Nothing here talks to a source: `resolve` loads a source with its secrets (in one short read),
the caller runs the connector with no transaction open (`connections.py`), and `record_check`
writes the outcome in a short write of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.datasources.base import (
    ConfigProblem,
    ConnectContext,
    SourceConfig,
    SourceEnvironment,
    SourceType,
    secret_field_paths,
)
from creativeflow.datasources.catalog import find_source_type, source_types
from creativeflow.datasources.configs import (
    ConfigInvalid,
    credential_refs,
    get_path,
    masked_config,
    masks_left,
    merge_kept_secrets,
    parse_config,
    restore_config,
    secret_paths_present,
    set_path,
    split_config,
)
from creativeflow.datasources.connections import CheckOutcome
from creativeflow.datasources.errors import DataSourceNameTaken, DataSourceNotFound
from creativeflow.datasources.events import DataSourceRecoveredEvent, DataSourceUnhealthyEvent
from creativeflow.datasources.models import CheckTrigger, DataSource, DataSourceCheck, SourceStatus
from creativeflow.datasources.repository import (
    CheckRepository,
    CredentialRepository,
    DataSourceRepository,
)
from creativeflow.datasources.schemas import (
    ConfigValidationRead,
    DataSourceCreate,
    DataSourceRead,
    DataSourceUpdate,
    ExportDocument,
    ExportedSource,
    FieldProblem,
    ImportRequest,
    LastCheckRead,
    SecretFieldRead,
)
from creativeflow.db.ids import uuid7
from creativeflow.db.types import utcnow
from creativeflow.encryption import FieldCipher
from creativeflow.identity.principal import Principal
from creativeflow.settings import Settings
from creativeflow.shared.core.exceptions import ValidationException
from creativeflow.shared.messaging.bus import record_event

CREDENTIAL_PURPOSE = "credentials.secret"


def secret_purpose(path: str) -> str:
    """The associated data of a source's secret: its column and its config path."""
    return f"data_sources.secrets:{path}"


def connect_context(settings: Settings) -> ConnectContext:
    return ConnectContext(
        timeout_seconds=settings.datasource_timeout_seconds,
        allow_private_hosts=settings.datasource_private_hosts_allowed,
        file_root=settings.resolved_datasource_file_root(),
    )


def _invalid(problems: Sequence[ConfigProblem], prefix: str) -> ValidationException:
    errors = [
        {"field": f"{prefix}.{p.field}" if p.field else prefix, "message": p.message}
        for p in problems
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return ValidationException(detail, errors=errors)


@dataclass(frozen=True, slots=True)
class ResolvedSource:
    """A source ready for its connector: its type and its config with every secret in."""

    source_type: SourceType
    config: SourceConfig
    source_id: uuid.UUID | None = None


class DataSourceService:
    def __init__(
        self,
        session: AsyncSession,
        principal: Principal | None,
        *,
        cipher: FieldCipher,
        settings: Settings,
    ) -> None:
        """`principal` None: the platform itself (scheduled checks), which sees every source."""
        self.session = session
        self.principal = principal
        self.cipher = cipher
        self.settings = settings
        self.sources = DataSourceRepository(session)
        self.checks = CheckRepository(session)
        self.credentials = CredentialRepository(session)

    # -- scope ---------------------------------------------------------------------------------

    @property
    def _scope(self) -> uuid.UUID | None:
        """Whose sources this caller sees: their own, or (None) everyone's."""
        if self.principal is None or self.principal.is_admin:
            return None
        return self.principal.user_id

    def _actor(self) -> uuid.UUID | None:
        return None if self.principal is None else self.principal.user_id

    async def get(self, source_id: uuid.UUID) -> DataSource:
        source = await self.sources.get_owned(source_id, self._scope)
        if source is None:
            raise DataSourceNotFound(f"No data source {source_id}")
        return source

    # -- configs -------------------------------------------------------------------------------

    async def _validated(
        self,
        data: Mapping[str, Any],
        *,
        owner_id: uuid.UUID,
        kept_secrets: Mapping[str, str] | None = None,
        prefix: str = "config",
    ) -> tuple[SourceType, SourceConfig]:
        """The config checked in full: its type, its model, the installation (file root), and
        that every credential it references is the owner's. ValidationException otherwise."""
        source_type = find_source_type(data.get("type"))
        if source_type is None:
            names = ", ".join(source_types())
            raise _invalid([ConfigProblem("type", f"must be one of: {names}")], prefix)
        model = source_type.config_model
        merged = merge_kept_secrets(model, data, kept_secrets or {})
        masked = masks_left(model, merged)
        if masked:
            raise _invalid(
                [
                    ConfigProblem(path, "send the secret itself: ******** stands for a stored one")
                    for path in masked
                ],
                prefix,
            )
        try:
            config = parse_config(source_type, merged)
        except ConfigInvalid as exc:
            raise _invalid(exc.problems, prefix) from None
        environment = SourceEnvironment(file_root=self.settings.resolved_datasource_file_root())
        problems = config.environment_problems(environment)
        refs = credential_refs(config)
        owned = await self.credentials.owned_many(list(refs.values()), owner_id)
        problems += [
            ConfigProblem(path, f"no credential {credential_id}")
            for path, credential_id in refs.items()
            if credential_id not in owned
        ]
        if problems:
            raise _invalid(problems, prefix)
        return source_type, config

    def _decrypted_secrets(self, source: DataSource) -> dict[str, str]:
        return {
            path: self.cipher.decrypt(ciphertext, purpose=secret_purpose(path), row_id=source.id)
            for path, ciphertext in source.secrets.items()
        }

    def _store_config(self, source: DataSource, config: SourceConfig) -> list[uuid.UUID]:
        stored = split_config(config)
        source.config = stored.config
        source.secrets = {
            path: self.cipher.encrypt(plaintext, purpose=secret_purpose(path), row_id=source.id)
            for path, plaintext in stored.secrets.items()
        }
        return stored.credential_ids

    async def validate(self, data: Mapping[str, Any]) -> ConfigValidationRead:
        assert self.principal is not None
        try:
            source_type, config = await self._validated(data, owner_id=self.principal.user_id)
        except ValidationException as exc:
            return ConfigValidationRead(
                valid=False,
                type=data.get("type") if isinstance(data.get("type"), str) else None,
                errors=[FieldProblem(**error) for error in exc.errors],
            )
        return ConfigValidationRead(
            valid=True,
            type=source_type.name,
            errors=[],
            reaches=[f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in config.hosts()],
        )

    # -- sources -------------------------------------------------------------------------------

    def _interval(self, seconds: int | None, field: str) -> int | None:
        minimum = self.settings.datasource_min_check_interval_seconds
        if seconds is not None and seconds < minimum:
            raise ValidationException.for_field(field, f"must be at least {minimum} seconds")
        return seconds

    async def create(self, data: DataSourceCreate, *, field_prefix: str = "") -> DataSource:
        assert self.principal is not None
        owner_id = self.principal.user_id
        interval = self._interval(
            data.check_interval_seconds, f"{field_prefix}check_interval_seconds"
        )
        source_type, config = await self._validated(
            data.config, owner_id=owner_id, prefix=f"{field_prefix}config"
        )
        if await self.sources.name_taken(owner_id, data.name):
            raise DataSourceNameTaken(f"You already have a data source named {data.name!r}")
        actor = self._actor()
        source = DataSource(
            id=uuid7(),
            owner_id=owner_id,
            name=data.name,
            description=data.description,
            type=source_type.name,
            category=source_type.category.value,
            tags=data.tags,
            status=SourceStatus.UNKNOWN,
            check_interval_seconds=interval,
            next_check_at=utcnow() + timedelta(seconds=interval) if interval else None,
            created_by=actor,
            updated_by=actor,
        )
        credential_ids = self._store_config(source, config)
        await self._flush_named(self.sources.add(source), data.name)
        await self.sources.link_credentials(source.id, credential_ids)
        return source

    async def _flush_named(self, write: Any, name: str) -> None:
        try:
            await write
        except IntegrityError:  # a concurrent create took the name between check and insert
            raise DataSourceNameTaken(f"You already have a data source named {name!r}") from None

    async def update(self, source_id: uuid.UUID, data: DataSourceUpdate) -> DataSource:
        source = await self.get(source_id)
        sent = data.model_fields_set
        if "name" in sent and data.name is not None and data.name != source.name:
            if await self.sources.name_taken(source.owner_id, data.name, except_id=source.id):
                raise DataSourceNameTaken(f"You already have a data source named {data.name!r}")
            source.name = data.name
        if "description" in sent:
            source.description = data.description
        if "tags" in sent and data.tags is not None:
            source.tags = data.tags
        if "check_interval_seconds" in sent:
            interval = self._interval(data.check_interval_seconds, "check_interval_seconds")
            source.check_interval_seconds = interval
            source.next_check_at = utcnow() + timedelta(seconds=interval) if interval else None
        if "config" in sent and data.config is not None:
            source_type, config = await self._validated(
                data.config,
                owner_id=source.owner_id,
                kept_secrets=self._decrypted_secrets(source),
            )
            source.type = source_type.name
            source.category = source_type.category.value
            credential_ids = self._store_config(source, config)
            await self.sources.link_credentials(source.id, credential_ids)
            # Tested with the old settings: until tested again, its health is unknown.
            source.status = SourceStatus.UNKNOWN
        source.touch(self._actor())
        await self._flush_named(self.sources.flush(), source.name)
        return source

    async def delete(self, source_id: uuid.UUID) -> None:
        await self.sources.delete(await self.get(source_id))

    async def list_page(
        self,
        *,
        search: str | None,
        types: Sequence[str],
        categories: Sequence[str],
        statuses: Sequence[str],
        sort: str,
        limit: int,
        offset: int,
    ) -> tuple[Sequence[DataSource], int]:
        return await self.sources.search_page(
            owner_id=self._scope,
            search=search,
            types=types,
            categories=categories,
            statuses=statuses,
            sort=sort,
            limit=limit,
            offset=offset,
        )

    def view(self, source: DataSource) -> DataSourceRead:
        """The source as answered: secrets masked, and which are set."""
        source_type = find_source_type(source.type)
        paths = (
            secret_paths_present(source_type.config_model, source.config)
            if source_type is not None
            else sorted(source.secrets)
        )
        states = []
        for path in paths:
            value = get_path(source.config, path)
            credential_id = (
                uuid.UUID(value["credential_id"])
                if isinstance(value, Mapping) and "credential_id" in value
                else None
            )
            states.append(
                SecretFieldRead(
                    path=path,
                    set=path in source.secrets or credential_id is not None,
                    credential_id=credential_id,
                )
            )
        last_check = (
            LastCheckRead(
                checked_at=source.last_checked_at,
                ok=source.last_error_code is None,
                error_code=source.last_error_code,
                message=source.last_error_message,
                latency_ms=source.last_latency_ms,
                server_version=source.server_version,
            )
            if source.last_checked_at is not None
            else None
        )
        return DataSourceRead(
            id=source.id,
            owner_id=source.owner_id,
            name=source.name,
            description=source.description,
            type=source.type,
            category=source.category,
            config=masked_config(source.config, set(source.secrets)),
            secrets=states,
            tags=source.tags,
            status=SourceStatus(source.status),
            last_check=last_check,
            check_interval_seconds=source.check_interval_seconds,
            next_check_at=source.next_check_at,
            created_at=source.created_at,
            updated_at=source.updated_at,
            created_by=source.created_by,
            updated_by=source.updated_by,
        )

    # -- connecting ----------------------------------------------------------------------------

    async def _with_credentials(
        self, config: dict[str, Any], model: type[SourceConfig], owner_id: uuid.UUID
    ) -> dict[str, Any]:
        """The config with each credential reference replaced by the credential's secret."""
        refs = {
            path: uuid.UUID(value["credential_id"])
            for path in secret_field_paths(model)
            if isinstance(value := get_path(config, path), Mapping) and "credential_id" in value
        }
        owned = await self.credentials.owned_many(list(refs.values()), owner_id)
        for path, credential_id in refs.items():
            credential = owned.get(credential_id)
            if credential is None:  # deleted under us: the check says so
                raise _invalid([ConfigProblem(path, f"no credential {credential_id}")], "config")
            set_path(
                config,
                path,
                self.cipher.decrypt(
                    credential.secret_ciphertext,
                    purpose=CREDENTIAL_PURPOSE,
                    row_id=credential.id,
                ),
            )
        return config

    async def resolve(self, source_id: uuid.UUID) -> ResolvedSource:
        """A saved source with its secrets, ready for a connector."""
        source = await self.get(source_id)
        source_type = find_source_type(source.type)
        if source_type is None:  # a type this version no longer has
            raise DataSourceNotFound(f"Data source {source_id} has an unknown type {source.type}")
        restored = restore_config(source.config, self._decrypted_secrets(source))
        restored = await self._with_credentials(restored, source_type.config_model, source.owner_id)
        try:
            config = parse_config(source_type, restored)
        except ConfigInvalid as exc:
            raise _invalid(exc.problems, "config") from None
        return ResolvedSource(source_type, config, source.id)

    async def resolve_unsaved(self, data: Mapping[str, Any]) -> ResolvedSource:
        """A config sent to be tested without saving, its credential references resolved."""
        assert self.principal is not None
        owner_id = self.principal.user_id
        source_type, _ = await self._validated(data, owner_id=owner_id)
        resolved = await self._with_credentials(dict(data), source_type.config_model, owner_id)
        return ResolvedSource(source_type, parse_config(source_type, resolved))

    async def record_check(
        self,
        source_id: uuid.UUID,
        outcome: CheckOutcome,
        *,
        trigger: CheckTrigger,
        job_id: uuid.UUID | None = None,
    ) -> DataSource | None:
        """Keep a check's outcome as the source's status and in its history; announce a
        source turning unhealthy or recovering. None when the source was deleted meanwhile."""
        source = await self.sources.get_owned(source_id, None)
        if source is None:
            return None
        now = utcnow()
        await self.checks.add(
            DataSourceCheck(
                source_id=source.id,
                ok=outcome.ok,
                trigger=trigger.value,
                error_code=outcome.error_code,
                message=outcome.message,
                latency_ms=outcome.latency_ms,
                server_version=outcome.server_version,
                details=outcome.details,
                job_id=job_id,
                created_by=self._actor(),
                updated_by=self._actor(),
            )
        )
        await self.checks.keep_newest(source.id, self.settings.datasource_check_history)
        previous = source.status
        source.status = SourceStatus.HEALTHY if outcome.ok else SourceStatus.UNHEALTHY
        source.last_checked_at = now
        source.last_error_code = outcome.error_code
        source.last_error_message = outcome.message
        source.last_latency_ms = outcome.latency_ms
        if outcome.server_version:
            source.server_version = outcome.server_version
        scheduled = trigger is CheckTrigger.SCHEDULED
        if not outcome.ok and previous != SourceStatus.UNHEALTHY:
            record_event(
                self.session.info,
                DataSourceUnhealthyEvent(
                    source_id=source.id,
                    owner_id=source.owner_id,
                    name=source.name,
                    type=source.type,
                    error_code=outcome.error_code or "ERROR",
                    message=outcome.message or "",
                    scheduled=scheduled,
                ),
            )
        elif outcome.ok and previous == SourceStatus.UNHEALTHY:
            record_event(
                self.session.info,
                DataSourceRecoveredEvent(
                    source_id=source.id,
                    owner_id=source.owner_id,
                    name=source.name,
                    type=source.type,
                    scheduled=scheduled,
                ),
            )
        await self.sources.flush()
        return source

    async def checks_page(
        self, source_id: uuid.UUID, *, limit: int, offset: int
    ) -> tuple[Sequence[DataSourceCheck], int]:
        source = await self.get(source_id)
        return await self.checks.page_for(source.id, limit=limit, offset=offset)

    # -- export and import ---------------------------------------------------------------------

    async def export(self, ids: Sequence[uuid.UUID] | None) -> ExportDocument:
        """The caller's sources (all, or `ids`) without any secret: a secret field is null
        and listed in `secrets_needed` (credential references included: they are ids of this
        installation)."""
        assert self.principal is not None
        rows = await self.sources.owned(self.principal.user_id, ids)
        if ids is not None and len(rows) != len(set(ids)):
            missing = set(ids) - {row.id for row in rows}
            raise DataSourceNotFound(f"No data source {sorted(map(str, missing))[0]}")
        exported = []
        for source in rows:
            source_type = find_source_type(source.type)
            config = dict(source.config)
            needed = []
            if source_type is not None:
                for path in secret_paths_present(source_type.config_model, config):
                    if get_path(config, path) is not None or path in source.secrets:
                        needed.append(path)
                    set_path(config, path, None)
            exported.append(
                ExportedSource(
                    name=source.name,
                    description=source.description,
                    type=source.type,
                    tags=source.tags,
                    check_interval_seconds=source.check_interval_seconds,
                    config=config,
                    secrets_needed=needed,
                )
            )
        return ExportDocument(exported_at=utcnow(), sources=exported)

    async def import_(self, request: ImportRequest) -> tuple[list[DataSource], list[str]]:
        """Create the document's sources, all or none. A secret the document lacks must be in
        `secrets` under the source's name; every one missing is a 422 naming it."""
        assert self.principal is not None
        names = [item.name for item in request.document.sources]
        duplicates = {name for name in names if names.count(name) > 1}
        if duplicates:
            raise ValidationException.for_field(
                "document.sources", f"names must be unique; repeated: {sorted(duplicates)[0]}"
            )
        unknown = set(request.secrets) - set(names)
        if unknown:
            raise ValidationException.for_field(
                f"secrets.{sorted(unknown)[0]}", "no source of that name in the document"
            )
        existing = await self.sources.owned_by_names(self.principal.user_id, names)
        if existing and request.on_conflict == "fail":
            raise DataSourceNameTaken(
                f"You already have a data source named {sorted(existing)[0]!r}"
            )
        created: list[DataSource] = []
        skipped: list[str] = []
        problems: list[dict[str, str]] = []
        for index, item in enumerate(request.document.sources):
            if item.name in existing:
                skipped.append(item.name)
                continue
            config = {**item.config, "type": item.type}
            given = request.secrets.get(item.name, {})
            missing = [
                {"field": f"secrets.{item.name}.{path}", "message": "no such field"}
                for path, value in given.items()
                if not set_path(config, path, value)
            ]
            missing += [
                {
                    "field": f"document.sources[{index}].config.{path}",
                    "message": f"this secret was not exported: send it as "
                    f"secrets[{item.name!r}][{path!r}]",
                }
                for path in item.secrets_needed
                if path not in given
            ]
            if missing:
                problems += missing
                continue
            try:
                created.append(
                    await self.create(
                        DataSourceCreate(
                            name=item.name,
                            description=item.description,
                            config=config,
                            tags=item.tags,
                            check_interval_seconds=item.check_interval_seconds,
                        ),
                        field_prefix=f"document.sources[{index}].",
                    )
                )
            except ValidationException as exc:
                for error in exc.errors:
                    if error["message"].startswith("this secret is required"):
                        path = error["field"].split(".config.", 1)[-1]
                        error = {
                            "field": error["field"],
                            "message": f"this secret was not exported: send it as "
                            f"secrets[{item.name!r}][{path!r}]",
                        }
                    problems.append(error)
        if problems:
            detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
            raise ValidationException(detail, errors=problems)
        return created, skipped


async def reencrypt_source_secrets(
    session: AsyncSession, cipher: FieldCipher, *, after: uuid.UUID | None, limit: int
) -> tuple[uuid.UUID | None, int]:
    """Re-encrypt under the active key the secrets of up to `limit` sources after `after`:
    (the last id seen, or None when done; values changed)."""
    sources = await DataSourceRepository(session).batch_after(after, limit)
    changed = 0
    for source in sources:
        updated = dict(source.secrets)
        for path, stored in source.secrets.items():
            fresh = cipher.reencrypt(stored, purpose=secret_purpose(path), row_id=source.id)
            if fresh is not None:
                updated[path] = fresh
                changed += 1
        if updated != source.secrets:
            source.secrets = updated
    await session.flush()
    return (sources[-1].id if sources else None), changed


async def reencrypt_credential_secrets(
    session: AsyncSession, cipher: FieldCipher, *, after: uuid.UUID | None, limit: int
) -> tuple[uuid.UUID | None, int]:
    """The same for shared credentials."""
    credentials = await CredentialRepository(session).batch_after(after, limit)
    changed = 0
    for credential in credentials:
        fresh = cipher.reencrypt(
            credential.secret_ciphertext, purpose=CREDENTIAL_PURPOSE, row_id=credential.id
        )
        if fresh is not None:
            credential.secret_ciphertext = fresh
            changed += 1
    await session.flush()
    return (credentials[-1].id if credentials else None), changed
