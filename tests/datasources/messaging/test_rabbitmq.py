"""RabbitMQ against the broker on 127.0.0.1 (TEST_RABBITMQ_URL), and its management API as a
local Starlette app speaking the API's JSON (the plugin is not enabled on the CI machine)."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from creativeflow.datasources.base import ConnectContext, SourceError, SourceErrorCode
from creativeflow.datasources.messaging.rabbitmq import SOURCE_TYPE, RabbitMqConfig
from tests.datasources.servers import ServerAddress, closed_port
from tests.providers.fake_servers import serve_app

CONNECTOR: Any = SOURCE_TYPE.connector


def config(**fields: Any) -> RabbitMqConfig:
    base = {"type": "rabbitmq", "host": "127.0.0.1", "username": "guest", "password": "guest"}
    return RabbitMqConfig.model_validate(base | fields)


def broker_config(server: ServerAddress, **fields: Any) -> RabbitMqConfig:
    """The test broker (its vhost is the URL's path, "/" when empty or "/")."""
    vhost = (server.path or "/").replace("%2F", "/") or "/"
    broker = {
        "host": server.host,
        "port": server.port,
        "username": server.user or "guest",
        "password": server.password or "guest",
        "vhost": vhost,
    }
    return config(**(broker | fields))


def names(exc: pytest.ExceptionInfo[ValidationError], loc: tuple[Any, ...]) -> bool:
    """Whether an error of the validation points at `loc` (or inside it)."""
    return any(error["loc"][: len(loc)] == loc for error in exc.value.errors())


# -- config --------------------------------------------------------------------------------


def test_the_port_follows_tls_unless_given() -> None:
    assert config().amqp_port == 5672
    assert config(tls={"enabled": True}).amqp_port == 5671
    assert config(port=5673, tls={"enabled": True}).amqp_port == 5673


def test_hosts_include_the_management_api() -> None:
    parsed = config(management_url="https://mgmt.example.com/rabbit/")

    assert parsed.hosts() == [("127.0.0.1", 5672), ("mgmt.example.com", 443)]


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"host": "amqp://broker"}, ("host",)),
        ({"host": "bad_host"}, ("host",)),
        ({"port": 0}, ("port",)),
        ({"port": 65536}, ("port",)),
        ({"password": None}, ("password",)),
        ({"username": ""}, ("username",)),
        ({"vhost": ""}, ("vhost",)),
        ({"queues": ["ok", "x" * 256]}, ("queues", 1)),
        ({"management_url": "ftp://mgmt:15672"}, ("management_url",)),
        ({"management_url": "http://guest:guest@mgmt:15672"}, ("management_url",)),
        ({"tls": {"verify": False}}, ("tls",)),
    ],
)
def test_config_mistakes_name_the_field(fields: dict[str, Any], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as exc:
        config(**fields)

    assert names(exc, loc)


def test_a_missing_password_is_an_error() -> None:
    with pytest.raises(ValidationError) as exc:
        RabbitMqConfig.model_validate({"type": "rabbitmq", "host": "h", "username": "u"})

    assert names(exc, ("password",))


# -- the broker ----------------------------------------------------------------------------


async def test_check_answers_the_broker_version(
    rabbitmq_server: ServerAddress, context: ConnectContext
) -> None:
    result = await CONNECTOR.check(broker_config(rabbitmq_server), context)

    assert result.server_version and result.server_version[0].isdigit()
    assert result.details["product"] == "RabbitMQ"


@pytest.fixture
async def queue(rabbitmq_server: ServerAddress) -> AsyncIterator[str]:
    """A queue of this test's own holding two messages, deleted afterwards."""
    import aiormq
    from yarl import URL

    source = broker_config(rabbitmq_server)
    name = f"cf-test-{uuid.uuid4().hex[:10]}"
    url = URL.build(
        scheme="amqp",
        host=source.host,
        port=source.amqp_port,
        user=source.username,
        password=rabbitmq_server.password or "guest",
        path="/" + source.vhost,
    )
    connection = await aiormq.connect(url)
    try:
        channel = await connection.channel()
        await channel.queue_declare(name)
        for body in (b'{"n": 1}', b'{"n": 2}'):
            await channel.basic_publish(body, routing_key=name)
        yield name
        await channel.queue_delete(name)
    finally:
        await connection.close()


async def test_discover_declares_the_named_queues_passively(
    rabbitmq_server: ServerAddress, context: ConnectContext, queue: str
) -> None:
    missing = f"cf-missing-{uuid.uuid4().hex[:10]}"
    source = broker_config(rabbitmq_server, queues=[queue, missing, queue])

    discovery = await CONNECTOR.discover(source, context)
    again = await CONNECTOR.discover(source, context)

    objects = {item.name: item for item in discovery.objects}
    assert list(objects) == [queue, missing]
    assert objects[queue].kind == "queue"
    assert objects[queue].details == {"exists": True, "messages": 2, "consumers": 0}
    # Not created by the passive declare, and nothing was taken off the queue.
    assert objects[missing].details == {"exists": False}
    assert again == discovery


async def test_discover_without_queues_or_management_says_what_to_set(
    rabbitmq_server: ServerAddress, context: ConnectContext
) -> None:
    with pytest.raises(SourceError) as exc:
        await CONNECTOR.discover(broker_config(rabbitmq_server), context)

    assert exc.value.code is SourceErrorCode.NOT_SUPPORTED
    assert "management_url" in exc.value.message


async def test_preview_is_not_supported_because_reading_consumes(context: ConnectContext) -> None:
    assert SOURCE_TYPE.can_preview is False

    with pytest.raises(SourceError) as exc:
        await CONNECTOR.preview(config(queues=["q"]), context, "q", 10)

    assert exc.value.code is SourceErrorCode.NOT_SUPPORTED
    assert "takes its messages off" in exc.value.message


async def test_a_wrong_password_is_auth_failed_without_the_password(
    rabbitmq_server: ServerAddress, context: ConnectContext
) -> None:
    secret = "wrong-" + uuid.uuid4().hex

    with pytest.raises(SourceError) as exc:
        await CONNECTOR.check(broker_config(rabbitmq_server, password=secret), context)

    assert exc.value.code is SourceErrorCode.AUTH_FAILED
    assert secret not in exc.value.message


async def test_an_unknown_vhost_is_not_found(
    rabbitmq_server: ServerAddress, context: ConnectContext
) -> None:
    with pytest.raises(SourceError) as exc:
        await CONNECTOR.check(broker_config(rabbitmq_server, vhost="cf-no-such-vhost"), context)

    assert exc.value.code is SourceErrorCode.NOT_FOUND
    assert "cf-no-such-vhost" in exc.value.message


async def test_tls_against_the_plain_port_is_a_tls_error(
    rabbitmq_server: ServerAddress, context: ConnectContext
) -> None:
    source = broker_config(rabbitmq_server, tls={"enabled": True, "verify": False})

    with pytest.raises(SourceError) as exc:
        await CONNECTOR.check(source, context)

    assert exc.value.code is SourceErrorCode.TLS_ERROR


async def test_a_closed_port_is_connection_refused(context: ConnectContext) -> None:
    with pytest.raises(SourceError) as exc:
        await CONNECTOR.check(config(port=closed_port()), context)

    assert exc.value.code is SourceErrorCode.CONNECTION_REFUSED


async def test_a_silent_port_times_out_in_time(silent_port: int, file_root: Any) -> None:
    quick = ConnectContext(timeout_seconds=1.0, allow_private_hosts=True, file_root=file_root)
    started = time.monotonic()

    with pytest.raises(SourceError) as exc:
        await CONNECTOR.check(config(port=silent_port), quick)

    assert exc.value.code is SourceErrorCode.TIMEOUT
    assert time.monotonic() - started < 2.0


async def test_loopback_is_refused_in_production(guarded_context: ConnectContext) -> None:
    with pytest.raises(SourceError) as exc:
        await CONNECTOR.check(config(), guarded_context)

    assert exc.value.code is SourceErrorCode.HOST_REFUSED


# -- the management API --------------------------------------------------------------------

QUEUES = [
    {
        "name": f"orders-{n}",
        "type": "classic",
        "state": "running",
        "durable": True,
        "auto_delete": False,
        "exclusive": False,
        "messages": n,
        "messages_ready": n,
        "messages_unacknowledged": 0,
        "consumers": 1,
    }
    for n in range(3)
]
EXCHANGES = [
    {"name": "", "type": "direct", "durable": True, "auto_delete": False, "internal": False},
    {
        "name": "amq.topic",
        "type": "topic",
        "durable": True,
        "auto_delete": False,
        "internal": False,
    },
    {"name": "events", "type": "fanout", "durable": True, "auto_delete": False, "internal": False},
]


def management_app(seen: list[dict[str, Any]]) -> Starlette:
    """The two listings of RabbitMQ's management API, paginated as the real one is (here two
    items a page), for the virtual host "/" and user guest:guest."""

    def listing(items: list[dict[str, Any]]) -> Any:
        async def endpoint(request: Request) -> JSONResponse:
            seen.append(
                {
                    "raw_path": request.scope["raw_path"],
                    "params": dict(request.query_params),
                    "host": request.headers["host"],
                }
            )
            expected = "Basic " + base64.b64encode(b"guest:guest").decode()
            if request.headers.get("authorization") != expected:
                return JSONResponse({"error": "not_authorised"}, status_code=401)
            if request.path_params["vhost"] != "/":
                return JSONResponse({"error": "Object Not Found"}, status_code=404)
            page, size = int(request.query_params["page"]), 2
            return JSONResponse(
                {
                    "items": items[(page - 1) * size : page * size],
                    "page": page,
                    "page_count": (len(items) + size - 1) // size,
                    "total_count": len(items),
                }
            )

        return endpoint

    return Starlette(
        routes=[
            Route("/api/queues/{vhost:path}", listing(QUEUES)),
            Route("/api/exchanges/{vhost:path}", listing(EXCHANGES)),
        ]
    )


@pytest.fixture
def management() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    with serve_app(management_app(seen)) as url:
        yield url, seen


async def test_discover_lists_queues_and_exchanges_from_the_management_api(
    management: tuple[str, list[dict[str, Any]]], context: ConnectContext
) -> None:
    url, seen = management
    port = url.rsplit(":", 1)[1]
    source = config(management_url=f"http://localhost:{port}/", queues=["ignored"])

    discovery = await CONNECTOR.discover(source, context)

    names = [(item.kind, item.name) for item in discovery.objects]
    assert names == [
        ("queue", "orders-0"),
        ("queue", "orders-1"),
        ("queue", "orders-2"),
        ("exchange", "events"),
    ]
    assert discovery.objects[2].details["messages"] == 2
    assert discovery.objects[2].details["consumers"] == 1
    assert discovery.objects[3].details["type"] == "fanout"
    assert not discovery.truncated
    # The vhost "/" travels encoded; every page was asked for; the name stays in Host while
    # the connection goes to the checked address.
    assert {call["raw_path"] for call in seen} == {b"/api/queues/%2F", b"/api/exchanges/%2F"}
    assert sorted(call["params"]["page"] for call in seen) == ["1", "1", "2", "2"]
    assert {call["host"] for call in seen} == {f"localhost:{port}"}


async def test_the_management_api_refusing_the_password_is_auth_failed(
    management: tuple[str, list[dict[str, Any]]], context: ConnectContext
) -> None:
    url, _ = management
    secret = "wrong-" + uuid.uuid4().hex

    with pytest.raises(SourceError) as exc:
        await CONNECTOR.discover(config(management_url=url, password=secret), context)

    assert exc.value.code is SourceErrorCode.AUTH_FAILED
    assert secret not in exc.value.message


async def test_an_unknown_vhost_on_the_management_api_is_not_found(
    management: tuple[str, list[dict[str, Any]]], context: ConnectContext
) -> None:
    url, _ = management

    with pytest.raises(SourceError) as exc:
        await CONNECTOR.discover(config(management_url=url, vhost="other"), context)

    assert exc.value.code is SourceErrorCode.NOT_FOUND


async def test_a_closed_management_port_is_connection_refused(context: ConnectContext) -> None:
    source = config(management_url=f"http://127.0.0.1:{closed_port()}")

    with pytest.raises(SourceError) as exc:
        await CONNECTOR.discover(source, context)

    assert exc.value.code is SourceErrorCode.CONNECTION_REFUSED


async def test_a_loopback_management_api_is_refused_in_production(
    guarded_context: ConnectContext,
) -> None:
    source = config(host="203.0.113.7", management_url="http://127.0.0.1:15672")

    with pytest.raises(SourceError) as exc:
        await CONNECTOR.discover(source, guarded_context)

    assert exc.value.code is SourceErrorCode.HOST_REFUSED
