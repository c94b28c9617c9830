"""MongoDB through pymongo's AsyncMongoClient: a database's collections and their documents.

The client is built from structured parameters (host, port, username, password as keyword
arguments), never from a URI with the password pasted in. Each member is reached with a direct
connection (`directConnection=True`) to the address the guard checked: a replica set's members
are otherwise discovered from the server's own answer and reached by names nobody checked.
Direct connections read from any member (primary or secondary), which is all a connector does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from creativeflow.datasources.base import (
    MAX_DISCOVERED,
    CheckResult,
    ConnectContext,
    DiscoveredObject,
    Discovery,
    Preview,
    Secret,
    SourceCategory,
    SourceConfig,
    SourceError,
    SourceErrorCode,
    SourceType,
)
from creativeflow.datasources.fields import DatabaseName, HostName, Port, TlsOptions
from creativeflow.datasources.rows import infer_columns, jsonable
from creativeflow.datasources.stores.common import gather_all
from creativeflow.datasources.stores.mongodb_client import (
    NEXT_MEMBER,
    UNAUTHORIZED,
    Member,
    client_for,
    mongo_error,
    plan,
)

if TYPE_CHECKING:
    from pymongo import AsyncMongoClient

T = TypeVar("T")

SAMPLE_DOCUMENTS = 20  # documents read per collection to list its fields
DISCOVER_CONCURRENCY = 8
MAX_SERVERS = 50


def _mongo_database(value: str) -> str:
    if any(char in value for char in './\\"$*<>:|? '):
        raise ValueError("must not contain '.', '$', spaces or any of / \\ \" * < > : | ?")
    return value


MongoDatabaseName = Annotated[DatabaseName, AfterValidator(_mongo_database)]


class MongoHost(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: HostName = Field(description="Host name or IP address of a mongod or mongos")
    port: Port = Field(default=27017, description="TCP port, 1-65535 (MongoDB: 27017)")


class MongoDbConfig(SourceConfig):
    type: Literal["mongodb"]
    # Not `hosts`: that name is SourceConfig.hosts(), the pairs the address guard sees.
    servers: list[MongoHost] = Field(
        default_factory=list,
        max_length=MAX_SERVERS,
        description="The servers to connect to (a standalone, replica-set members or mongos "
        "routers), tried in order; leave empty when `srv` is set",
    )
    srv: HostName | None = Field(
        default=None,
        validate_default=True,
        description="A mongodb+srv:// cluster name (cluster0.abc12.mongodb.net): its servers "
        "come from DNS. Instead of `servers`; such clusters usually need `tls.enabled`",
    )
    database: MongoDatabaseName = Field(description="The database to read")
    username: str | None = Field(
        default=None, min_length=1, max_length=256, description="User name (SCRAM)"
    )
    password: Secret | None = Field(
        default=None,
        validate_default=True,
        description="The user's password; required with `username`",
    )
    auth_source: MongoDatabaseName = Field(
        default="admin", description="The database that holds the user (authSource)"
    )
    tls: TlsOptions = Field(default_factory=TlsOptions, description="TLS for the connection")
    replica_set: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_.\-]+$",
        description="The replica set's name; when set, a server outside it is not used",
    )

    @field_validator("srv")
    @classmethod
    def _servers_or_srv(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "servers" not in info.data:  # `servers` itself is invalid; that error says enough
            return value
        if value is not None and info.data["servers"]:
            raise ValueError("set either `servers` or `srv`, not both")
        if value is None and not info.data["servers"]:
            raise ValueError("set `servers` (host and port of each) or `srv`")
        return value

    @field_validator("password")
    @classmethod
    def _password_with_username(cls, value: Any, info: ValidationInfo) -> Any:
        if "username" not in info.data:
            return value
        if value is None and info.data["username"]:
            raise ValueError("is required when `username` is set")
        if value is not None and not info.data["username"]:
            raise ValueError("is set but `username` is not; set both or neither")
        return value

    def hosts(self) -> list[tuple[str, int]]:
        # An SRV cluster's servers are known only after the DNS lookup, which the connector
        # makes and checks server by server.
        return [(server.host, server.port) for server in self.servers]


def _plain(value: Any) -> Any:
    """BSON values as plain Python ones (ObjectId as text, Decimal128 as Decimal, ...)."""
    from bson import DBRef, Decimal128, MaxKey, MinKey, ObjectId, Regex, Timestamp

    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, Decimal128):
        return value.to_decimal()
    if isinstance(value, Timestamp):
        return value.as_datetime()
    if isinstance(value, Regex):
        return value.pattern
    if isinstance(value, DBRef):
        return {"$ref": value.collection, "$id": _plain(value.id)}
    if isinstance(value, MinKey | MaxKey):
        return type(value).__name__
    if isinstance(value, str | bytes | int | float | dt.datetime) or value is None:
        return value  # Int64, Code and Binary are subclasses of these
    return str(value)  # DatetimeMS outside datetime's range, ...


_COLLECTION = re.compile(r"^[^$\x00]{1,255}$")


class MongoDbConnector:
    async def _run(
        self,
        config: MongoDbConfig,
        context: ConnectContext,
        work: Callable[[AsyncMongoClient[Any], Member], Awaitable[T]],
    ) -> T:
        """`work` against the first member that answers, within the time limit overall."""
        from pymongo.errors import PyMongoError

        loop = asyncio.get_running_loop()
        deadline = loop.time() + context.timeout_seconds
        route = await plan(config, context)
        failure: SourceError | None = None
        for index, member in enumerate(route.members):
            budget = (deadline - loop.time()) / (len(route.members) - index)
            if budget < 0.1:
                break
            client = client_for(config, route, member, budget)
            try:
                # Each operation has the budget (timeoutMS); so has the attempt as a whole.
                async with asyncio.timeout(budget):
                    return await work(client, member)
            except (PyMongoError, OSError) as exc:  # OSError: TimeoutError too
                error = mongo_error(exc, member, client, config)
                if error.code not in NEXT_MEMBER:
                    raise error from None
                failure = error
            finally:
                await client.close()
        raise failure or SourceError(SourceErrorCode.TIMEOUT, "no server answered in time")

    async def check(self, config: MongoDbConfig, context: ConnectContext) -> CheckResult:
        async def work(client: AsyncMongoClient[Any], member: Member) -> CheckResult:
            build = await client.admin.command("buildInfo")
            await _require_database(client, config.database)
            database = client[config.database]
            names = await database.list_collection_names(authorizedCollections=True)
            kinds = [
                d.server_type_name
                for d in client.topology_description.server_descriptions().values()
            ]
            return CheckResult(
                server_version=str(build.get("version")) if build.get("version") else None,
                details={
                    "server": member.label,
                    "role": kinds[0] if kinds else None,
                    "database": config.database,
                    "collections": len(names),
                },
            )

        return await self._run(config, context, work)

    async def discover(self, config: MongoDbConfig, context: ConnectContext) -> Discovery:
        async def work(client: AsyncMongoClient[Any], member: Member) -> Discovery:
            await _require_database(client, config.database)
            database = client[config.database]
            cursor = await database.list_collections(authorizedCollections=True)
            infos = [info async for info in cursor if not str(info["name"]).startswith("system.")]
            infos.sort(key=lambda info: str(info["name"]))
            gate = asyncio.Semaphore(DISCOVER_CONCURRENCY)

            async def describe(info: Mapping[str, Any]) -> DiscoveredObject:
                from pymongo.errors import OperationFailure

                name, kind = str(info["name"]), str(info.get("type", "collection"))
                collection = database[name]
                async with gate:
                    count: int | None = None
                    if kind == "collection":
                        try:
                            count = await collection.estimated_document_count()
                        except OperationFailure:
                            count = None
                    sample = await collection.find().limit(SAMPLE_DOCUMENTS).to_list()
                return DiscoveredObject(
                    name=name,
                    kind="view" if kind == "view" else "collection",
                    columns=infer_columns([_plain(document) for document in sample]),
                    details={"type": kind, "estimated_documents": count},
                )

            objects = await gather_all([describe(info) for info in infos[:MAX_DISCOVERED]])
            return Discovery(objects=list(objects), truncated=len(infos) > MAX_DISCOVERED)

        return await self._run(config, context, work)

    async def preview(
        self, config: MongoDbConfig, context: ConnectContext, object_name: str, limit: int
    ) -> Preview:
        if not _COLLECTION.match(object_name) or object_name.startswith("system."):
            raise SourceError(
                SourceErrorCode.INVALID_OBJECT,
                "a collection name is 1-255 characters without '$' and does not start with "
                "'system.'",
            )

        async def work(client: AsyncMongoClient[Any], member: Member) -> Preview:
            database = client[config.database]
            found = await database.list_collection_names(
                filter={"name": object_name}, authorizedCollections=True
            )
            if not found:
                raise SourceError(
                    SourceErrorCode.NOT_FOUND,
                    f"the database {config.database} has no collection {object_name!r}",
                )
            documents = await database[object_name].find().limit(limit + 1).to_list()
            rows = [_plain(document) for document in documents[:limit]]
            return Preview(
                columns=infer_columns(rows),
                rows=[jsonable(row) for row in rows],
                truncated=len(documents) > limit,
            )

        return await self._run(config, context, work)


async def _require_database(client: AsyncMongoClient[Any], name: str) -> None:
    """NOT_FOUND when the database does not exist (MongoDB creates one with its first
    collection); a user who may not list databases sees only the ones it has rights on."""
    from pymongo.errors import OperationFailure

    try:
        answer = await client.admin.command(
            "listDatabases", nameOnly=True, authorizedDatabases=True
        )
    except OperationFailure as exc:
        if exc.code == UNAUTHORIZED:
            return
        raise
    if name not in {str(database["name"]) for database in answer.get("databases", [])}:
        raise SourceError(
            SourceErrorCode.NOT_FOUND,
            f"the database {name} does not exist (or holds no collection yet)",
        )


SOURCE_TYPE = SourceType(
    name="mongodb",
    display_name="MongoDB",
    category=SourceCategory.DATABASE,
    config_model=MongoDbConfig,
    connector=MongoDbConnector(),
    description="A MongoDB database (standalone, replica set, sharded or mongodb+srv): its "
    "collections with their sampled fields, and the first documents of one.",
    drivers=("pymongo",),
    extra="mongodb",
)
