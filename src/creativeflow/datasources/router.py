"""/api/v1/datasources: the registry of data sources, their tests, discovery and preview.

Another user's source is 404 DATASOURCE_NOT_FOUND (administrators see every source). The routes
that reach a source (tests, discovery, preview) hold no transaction while they do: they read
what they need in one short unit of work, talk to the source, then (tests) record the outcome
in another.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from creativeflow.datasources import connections
from creativeflow.datasources.base import MAX_PREVIEW_ROWS, SourceError, secret_field_paths
from creativeflow.datasources.catalog import source_types
from creativeflow.datasources.connections import CheckOutcome
from creativeflow.datasources.credentials import CredentialService
from creativeflow.datasources.errors import SourceUnavailable
from creativeflow.datasources.models import CheckTrigger, SourceStatus
from creativeflow.datasources.schemas import (
    CheckRead,
    ConfigInput,
    ConfigValidationRead,
    CredentialCreate,
    CredentialRead,
    CredentialRotate,
    CredentialUpdate,
    DataSourceCreate,
    DataSourceRead,
    DataSourceUpdate,
    DiscoveryRead,
    DriverRead,
    ExportDocument,
    ImportRequest,
    ImportResultRead,
    PreviewRead,
    SourceTypeRead,
    TestResultRead,
)
from creativeflow.datasources.service import DataSourceService, ResolvedSource, connect_context
from creativeflow.http.auth import DbSession, require_permission
from creativeflow.http.pagination import Limit, Offset, Page
from creativeflow.http.problems import error_responses
from creativeflow.http.routing import UngatedRoute, api_router, unit_of_work
from creativeflow.identity.permissions import Permission
from creativeflow.identity.principal import Principal

router = api_router(prefix="/datasources", tags=["data sources"])
# The routes that reach a source: no transaction, nor SQLite's write gate, while they do.
reaching_router = APIRouter(prefix="/datasources", tags=["data sources"], route_class=UngatedRoute)
credentials_router = api_router(prefix="/credentials", tags=["credentials"])

SourceId = Annotated[uuid.UUID, Path(description="The data source's id")]
CredentialId = Annotated[uuid.UUID, Path(description="The credential's id")]
Reader = Annotated[Principal, Depends(require_permission(Permission.DATASOURCES_READ))]
Manager = Annotated[Principal, Depends(require_permission(Permission.DATASOURCES_MANAGE))]
SortField = Literal["name", "-name", "created_at", "-created_at", "updated_at", "-updated_at"]

_REACHES_SOURCE = (
    "Reaches the source for real, with DATASOURCE_TIMEOUT_SECONDS at most; a host resolving "
    "to a loopback, private or link-local address is refused (HOST_REFUSED) unless "
    "DATASOURCE_ALLOW_PRIVATE_HOSTS is on."
)
_FAILURES = (
    "A source that cannot be reached is a problem whose `code` says why: 502 "
    "(CONNECTION_REFUSED, AUTH_FAILED, TLS_ERROR, HOST_NOT_FOUND, PROTOCOL_ERROR, ...), 504 "
    "TIMEOUT, 404 NOT_FOUND (the object), 422 INVALID_OBJECT or HOST_REFUSED, 501 "
    "DRIVER_MISSING (which extra to install), 400 NOT_SUPPORTED."
)


def _service(request: Request, session: Any, principal: Principal | None) -> DataSourceService:
    platform = request.app.state.platform
    return DataSourceService(
        session, principal, cipher=platform.field_cipher, settings=platform.settings
    )


def _located(response: Response, source: DataSourceRead) -> None:
    response.headers["Location"] = f"/api/v1/datasources/{source.id}"


# -- types and validation -------------------------------------------------------------------


@router.get(
    "/types",
    response_model=list[SourceTypeRead],
    summary="List the source types, with the JSON Schema of each one's config",
    description="Which fields are secrets, and whether test, discovery and preview are "
    "available on this installation (a missing driver says which extra installs it).",
    responses=error_responses(401, 403),
)
async def list_types(_principal: Reader) -> list[SourceTypeRead]:
    listed = []
    for source_type in source_types().values():
        missing = source_type.missing_drivers()
        installed = not missing
        listed.append(
            SourceTypeRead(
                name=source_type.name,
                display_name=source_type.display_name,
                category=source_type.category.value,
                description=source_type.description,
                config_schema=source_type.config_model.model_json_schema(),
                secret_fields=secret_field_paths(source_type.config_model),
                driver=DriverRead(
                    installed=installed,
                    missing=missing,
                    extra=source_type.extra,
                    install=f"pip install 'creativeflow[{source_type.extra}]'"
                    if source_type.extra and missing
                    else None,
                ),
                can_test=installed,
                can_discover=installed and source_type.can_discover,
                can_preview=installed and source_type.can_preview,
            )
        )
    return listed


@router.post(
    "/validate",
    response_model=ConfigValidationRead,
    summary="Validate a config without saving it",
    description="200 either way: `valid`, and each problem with the config path it concerns "
    "(`config.port`). Nothing is written and the source is not contacted.",
    responses=error_responses(401, 403, 422),
)
async def validate_config(
    data: ConfigInput, request: Request, session: DbSession, principal: Manager
) -> ConfigValidationRead:
    return await _service(request, session, principal).validate(data.config)


async def _test(request: Request, resolved: ResolvedSource) -> CheckOutcome:
    settings = request.app.state.platform.settings
    return await connections.check(resolved.source_type, resolved.config, connect_context(settings))


@reaching_router.post(
    "/test",
    response_model=TestResultRead,
    summary="Test a config without saving it",
    description="One real connection attempt: ok or failed, the latency, the server's version "
    "where the protocol tells it, and on failure a `error_code` and a reason. " + _REACHES_SOURCE,
    responses=error_responses(401, 403, 422),
)
async def test_unsaved(data: ConfigInput, request: Request, principal: Manager) -> TestResultRead:
    async with unit_of_work(request, write=False) as session:
        resolved = await _service(request, session, principal).resolve_unsaved(data.config)
    return TestResultRead.of(await _test(request, resolved))


# -- export and import ----------------------------------------------------------------------


@router.get(
    "/export",
    response_model=ExportDocument,
    summary="Export your sources as JSON, without their secrets",
    description="Every secret field is null and listed in `secrets_needed`; importing asks for "
    "them.",
    responses=error_responses(401, 403, 404, 422),
)
async def export_sources(
    request: Request,
    session: DbSession,
    principal: Reader,
    ids: Annotated[
        list[uuid.UUID] | None, Query(description="Only these sources (default: all yours)")
    ] = None,
) -> ExportDocument:
    return await _service(request, session, principal).export(ids)


@router.post(
    "/import",
    status_code=status.HTTP_201_CREATED,
    response_model=ImportResultRead,
    summary="Import sources exported as JSON",
    description="All or nothing. Each secret the export left out must be sent in `secrets` "
    "under the source's name; every missing one is a 422 naming it. A name you already use "
    "is a 409, or skipped with `on_conflict: skip`.",
    responses=error_responses(401, 403, 409, 422),
)
async def import_sources(
    data: ImportRequest, request: Request, session: DbSession, principal: Manager
) -> ImportResultRead:
    service = _service(request, session, principal)
    created, skipped = await service.import_(data)
    return ImportResultRead(created=[service.view(source) for source in created], skipped=skipped)


# -- sources --------------------------------------------------------------------------------


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DataSourceRead,
    summary="Register a data source",
    description="The config is validated in full (422 naming each field); its secrets are "
    "encrypted and never returned. The source is not contacted: test it with "
    "`POST /datasources/{id}/test`.",
    responses=error_responses(401, 403, 409, 422),
)
async def create_source(
    data: DataSourceCreate,
    request: Request,
    session: DbSession,
    principal: Manager,
    response: Response,
) -> DataSourceRead:
    service = _service(request, session, principal)
    body = service.view(await service.create(data))
    _located(response, body)
    return body


@router.get(
    "",
    response_model=Page[DataSourceRead],
    summary="List your data sources",
    description="Filter by a search term (name and description), types, categories and "
    "statuses; sort by name, created_at or updated_at (`-` for descending).",
    responses=error_responses(401, 403, 422),
)
async def list_sources(
    request: Request,
    session: DbSession,
    principal: Reader,
    search: Annotated[str | None, Query(max_length=200)] = None,
    type: Annotated[list[str] | None, Query(description="Source type names")] = None,
    category: Annotated[list[str] | None, Query()] = None,
    status_: Annotated[list[SourceStatus] | None, Query(alias="status")] = None,
    sort: SortField = "-created_at",
    limit: Limit = 20,
    offset: Offset = 0,
) -> Page[DataSourceRead]:
    service = _service(request, session, principal)
    rows, total = await service.list_page(
        search=search,
        types=type or [],
        categories=category or [],
        statuses=[s.value for s in status_ or []],
        sort=sort,
        limit=limit,
        offset=offset,
    )
    return Page[DataSourceRead].of(
        [service.view(row) for row in rows], total=total, limit=limit, offset=offset
    )


@router.get(
    "/{source_id}",
    response_model=DataSourceRead,
    summary="Get a data source",
    responses=error_responses(401, 403, 404, 422),
)
async def get_source(
    source_id: SourceId, request: Request, session: DbSession, principal: Reader
) -> DataSourceRead:
    service = _service(request, session, principal)
    return service.view(await service.get(source_id))


@router.patch(
    "/{source_id}",
    response_model=DataSourceRead,
    summary="Change a data source",
    description="Only the fields sent change. A new `config` replaces the old one, except "
    'that a secret field left out or sent as "********" keeps its stored value (`null` '
    "clears it); the status turns `unknown` until the next test.",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def update_source(
    source_id: SourceId,
    data: DataSourceUpdate,
    request: Request,
    session: DbSession,
    principal: Manager,
) -> DataSourceRead:
    service = _service(request, session, principal)
    return service.view(await service.update(source_id, data))


@router.delete(
    "/{source_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a data source, with its check history",
    responses=error_responses(401, 403, 404, 422),
)
async def delete_source(
    source_id: SourceId, request: Request, session: DbSession, principal: Manager
) -> Response:
    await _service(request, session, principal).delete(source_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@reaching_router.post(
    "/{source_id}/test",
    response_model=TestResultRead,
    summary="Test a saved data source's connection",
    description="As `POST /datasources/test`; the outcome becomes the source's status "
    "(`healthy` or `unhealthy`) and joins its check history. A source turning unhealthy "
    "announces `datasources.unhealthy` (webhooks, sockets). " + _REACHES_SOURCE,
    responses=error_responses(401, 403, 404, 422),
)
async def test_saved(source_id: SourceId, request: Request, principal: Manager) -> TestResultRead:
    async with unit_of_work(request, write=False) as session:
        resolved = await _service(request, session, principal).resolve(source_id)
    outcome = await _test(request, resolved)
    async with unit_of_work(request) as session:
        source = await _service(request, session, principal).record_check(
            source_id, outcome, trigger=CheckTrigger.MANUAL
        )
    return TestResultRead.of(outcome, SourceStatus(source.status) if source else None)


@router.get(
    "/{source_id}/checks",
    response_model=Page[CheckRead],
    summary="A data source's check history, newest first",
    description="Manual tests and scheduled checks (the newest DATASOURCE_CHECK_HISTORY).",
    responses=error_responses(401, 403, 404, 422),
)
async def list_checks(
    source_id: SourceId,
    request: Request,
    session: DbSession,
    principal: Reader,
    limit: Limit = 20,
    offset: Offset = 0,
) -> Page[CheckRead]:
    rows, total = await _service(request, session, principal).checks_page(
        source_id, limit=limit, offset=offset
    )
    return Page[CheckRead].of(
        [CheckRead.of(row) for row in rows], total=total, limit=limit, offset=offset
    )


async def _resolved_for_reading(
    request: Request, source_id: uuid.UUID, principal: Principal
) -> ResolvedSource:
    async with unit_of_work(request, write=False) as session:
        return await _service(request, session, principal).resolve(source_id)


@reaching_router.get(
    "/{source_id}/discover",
    response_model=DiscoveryRead,
    summary="What a data source holds",
    description="Tables and columns, buckets and prefixes, collections, keys by pattern, "
    "topics or queues, sheets, a channel's videos: by type. Each object's `name` is what "
    "`preview?object=` takes. " + _REACHES_SOURCE + " " + _FAILURES,
    responses=error_responses(400, 401, 403, 404, 422, 501, 502, 504),
)
async def discover(source_id: SourceId, request: Request, principal: Reader) -> DiscoveryRead:
    resolved = await _resolved_for_reading(request, source_id, principal)
    context = connect_context(request.app.state.platform.settings)
    try:
        found = await connections.discover(resolved.source_type, resolved.config, context)
    except SourceError as exc:
        raise SourceUnavailable(exc) from None
    return DiscoveryRead.of(found)


@reaching_router.get(
    "/{source_id}/preview",
    response_model=PreviewRead,
    summary="The first rows of one of a data source's objects, with their column types",
    description="For tabular objects (a table, a file, a sheet, a key, a stream...). Never "
    "changes the source. " + _REACHES_SOURCE + " " + _FAILURES,
    responses=error_responses(400, 401, 403, 404, 422, 501, 502, 504),
)
async def preview(
    source_id: SourceId,
    request: Request,
    principal: Reader,
    object: Annotated[
        str, Query(min_length=1, max_length=1024, description="An object's name from discover")
    ],
    limit: Annotated[int, Query(ge=1, le=MAX_PREVIEW_ROWS)] = 20,
) -> PreviewRead:
    resolved = await _resolved_for_reading(request, source_id, principal)
    context = connect_context(request.app.state.platform.settings)
    try:
        rows = await connections.preview(
            resolved.source_type, resolved.config, context, object, limit
        )
    except SourceError as exc:
        raise SourceUnavailable(exc) from None
    return PreviewRead.of(object, rows)


# -- credentials ----------------------------------------------------------------------------


def _credentials(request: Request, session: Any, principal: Principal) -> CredentialService:
    return CredentialService(session, principal, cipher=request.app.state.platform.field_cipher)


@credentials_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CredentialRead,
    summary="Store a shared credential",
    description="A password, token, API key, key file or OAuth client secret, held once "
    '(encrypted) and used by any of your sources: put `{"credential_id": "..."}` in a '
    "secret field of their config. The secret is never returned.",
    responses=error_responses(401, 403, 409, 422),
)
async def create_credential(
    data: CredentialCreate,
    request: Request,
    session: DbSession,
    principal: Manager,
    response: Response,
) -> CredentialRead:
    credential = await _credentials(request, session, principal).create(data)
    response.headers["Location"] = f"/api/v1/credentials/{credential.id}"
    return CredentialRead.of(credential, [])


@credentials_router.get(
    "",
    response_model=Page[CredentialRead],
    summary="List your credentials",
    description="By name. Their secrets are never returned.",
    responses=error_responses(401, 403, 422),
)
async def list_credentials(
    request: Request,
    session: DbSession,
    principal: Reader,
    limit: Limit = 20,
    offset: Offset = 0,
) -> Page[CredentialRead]:
    rows, total = await _credentials(request, session, principal).list_page(
        limit=limit, offset=offset
    )
    return Page[CredentialRead].of(
        [CredentialRead.of(row) for row in rows], total=total, limit=limit, offset=offset
    )


@credentials_router.get(
    "/{credential_id}",
    response_model=CredentialRead,
    summary="Get a credential, with the sources that use it",
    responses=error_responses(401, 403, 404, 422),
)
async def get_credential(
    credential_id: CredentialId, request: Request, session: DbSession, principal: Reader
) -> CredentialRead:
    service = _credentials(request, session, principal)
    credential = await service.get(credential_id)
    return CredentialRead.of(credential, await service.used_by(credential))


@credentials_router.patch(
    "/{credential_id}",
    response_model=CredentialRead,
    summary="Rename or describe a credential",
    description="Only the fields sent change; the secret changes through `/rotate`.",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def update_credential(
    credential_id: CredentialId,
    data: CredentialUpdate,
    request: Request,
    session: DbSession,
    principal: Manager,
) -> CredentialRead:
    service = _credentials(request, session, principal)
    credential = await service.update(credential_id, data)
    return CredentialRead.of(credential, await service.used_by(credential))


@credentials_router.post(
    "/{credential_id}/rotate",
    response_model=CredentialRead,
    summary="Replace a credential's secret, for every source that uses it",
    description="The sources that use it connect with the new secret from now on; their "
    "status turns `unknown` until their next test.",
    responses=error_responses(401, 403, 404, 422),
)
async def rotate_credential(
    credential_id: CredentialId,
    data: CredentialRotate,
    request: Request,
    session: DbSession,
    principal: Manager,
) -> CredentialRead:
    service = _credentials(request, session, principal)
    credential = await service.rotate(credential_id, data)
    return CredentialRead.of(credential, await service.used_by(credential))


@credentials_router.delete(
    "/{credential_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a credential no source uses",
    description="409 CREDENTIAL_IN_USE, naming the sources, while any source uses it.",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def delete_credential(
    credential_id: CredentialId, request: Request, session: DbSession, principal: Manager
) -> Response:
    await _credentials(request, session, principal).delete(credential_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
