"""RabbitMQ through aiormq (AMQP 0-9-1), and its management HTTP API where one is configured.

AMQP itself cannot list queues, so discovery asks the management API (`management_url`) for
every queue and exchange of the virtual host, or else declares each queue named in `queues`
passively, which answers its message and consumer counts without changing anything. A queue
that does not exist is listed with `exists: false` (the broker closes the channel with 404;
the next queue gets a new channel) rather than failing the whole discovery.

There is no preview: reading from a queue takes the messages off it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal
from urllib.parse import quote

import httpx
from pydantic import AfterValidator, ConfigDict, Field

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
    network_error,
    reveal,
)
from creativeflow.datasources.fields import HostName, HttpUrl, Port, TlsOptions, url_host_port
from creativeflow.datasources.messaging.common import default_port, os_error_in, timeout_error

AMQP_PORT = 5672
AMQPS_PORT = 5671
MAX_QUEUES = 100
PAGE_SIZE = 500  # the management API's largest page
QUEUE_FIELDS = (
    "name,type,state,durable,auto_delete,exclusive,messages,messages_ready,"
    "messages_unacknowledged,consumers"
)
EXCHANGE_FIELDS = "name,type,durable,auto_delete,internal"


def _amqp_name(value: str) -> str:
    """A virtual host or queue name: AMQP's short string (1-255 bytes), no control bytes."""
    if not value:
        raise ValueError("must not be empty")
    if len(value.encode()) > 255:
        raise ValueError("must be at most 255 bytes")
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise ValueError("must not contain control characters")
    return value


AmqpName = Annotated[str, AfterValidator(_amqp_name)]


class RabbitMqConfig(SourceConfig):
    # Validation errors never echo what was sent (it may be a secret).
    model_config = ConfigDict(hide_input_in_errors=True)

    type: Literal["rabbitmq"] = Field(description="RabbitMQ")
    host: HostName = Field(description="Broker host name or IP address")
    port: Port | None = Field(
        default=None, description="AMQP port: 5672, or 5671 with TLS, when left empty"
    )
    vhost: AmqpName = Field(default="/", description="Virtual host (RabbitMQ's default is /)")
    username: str = Field(min_length=1, max_length=255, description="User name")
    password: Secret = Field(
        description="Password (also used for the management API when it is configured)"
    )
    tls: TlsOptions = Field(default_factory=TlsOptions, description="TLS (AMQPS)")
    queues: list[AmqpName] = Field(
        default_factory=list,
        max_length=MAX_QUEUES,
        description="Queues to watch; discovery reports their message and consumer counts "
        "when no management API is configured",
    )
    management_url: HttpUrl | None = Field(
        default=None,
        description="Base URL of the management HTTP API (http://host:15672); lets discovery "
        "list every queue and exchange of the virtual host. Same user name and password",
    )

    @property
    def amqp_port(self) -> int:
        return default_port(self.port, self.tls, AMQP_PORT, AMQPS_PORT)

    def hosts(self) -> list[tuple[str, int]]:
        hosts = [(self.host, self.amqp_port)]
        if self.management_url:
            hosts.append(url_host_port(self.management_url))
        return hosts


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None if value is None else str(value)


def _amqp_error(exc: BaseException, config: RabbitMqConfig, target: str) -> SourceError:
    from aiormq import exceptions as amqp

    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, TimeoutError):
        return timeout_error(target)
    if isinstance(exc, amqp.ProbableAuthenticationError):
        return SourceError(
            SourceErrorCode.AUTH_FAILED,
            f"{target} refused the login of user {config.username!r} (ACCESS_REFUSED)",
        )
    if isinstance(exc, amqp.AuthenticationError):
        return SourceError(
            SourceErrorCode.AUTH_FAILED, f"{target} offers no login mechanism aiormq speaks"
        )
    refused_vhost = isinstance(exc, amqp.ConnectionNotAllowed) or (
        # aiormq 7 reports the broker's Connection.Close in answer to Connection.Open as an
        # unexpected frame, without the reply text.
        isinstance(exc, amqp.InvalidFrameError)
        and "Connection.OpenOk" in str(exc)
        and "Connection.Close" in str(exc)
    )
    if refused_vhost:
        return SourceError(
            SourceErrorCode.NOT_FOUND,
            f"{target} refused the virtual host {config.vhost!r}: it does not exist, or user "
            f"{config.username!r} has no access to it",
        )
    cause = os_error_in(exc)
    if cause is not None:
        error = network_error(cause, target)
        if error.code is SourceErrorCode.TLS_ERROR and config.amqp_port == AMQP_PORT:
            return SourceError(error.code, f"{error.message}; AMQPS usually listens on 5671")
        return error
    if isinstance(exc, amqp.IncompatibleProtocolError | amqp.ProtocolSyntaxError):
        return SourceError(SourceErrorCode.PROTOCOL_ERROR, f"{target} does not speak AMQP 0-9-1")
    if isinstance(exc, amqp.AMQPConnectionError):
        return SourceError(
            SourceErrorCode.PROTOCOL_ERROR, f"{target} closed the connection unexpectedly"
        )
    return SourceError(SourceErrorCode.ERROR, f"{target}: {type(exc).__name__}")


@contextlib.asynccontextmanager
async def _connection(config: RabbitMqConfig, context: ConnectContext) -> AsyncIterator[Any]:
    """An open AMQP connection to the checked address (the host name is the TLS server name),
    inside the time limit, closed on the way out."""
    import aiormq
    from yarl import URL

    port = config.amqp_port
    target = f"the RabbitMQ broker {config.host}:{port}"
    address = await context.address(config.host, port)
    tls = config.tls.context()
    url = URL.build(
        scheme="amqps" if tls else "amqp",
        host=address,
        port=port,
        user=config.username,
        password=reveal(config.password),
        path="/" + config.vhost,
    )
    extra: dict[str, Any] = {"context": tls, "server_hostname": config.host} if tls else {}
    connection = None
    try:
        async with asyncio.timeout(context.timeout_seconds):
            connection = await aiormq.connect(
                url, client_properties={"connection_name": "creativeflow"}, **extra
            )
            yield connection
    except SourceError:
        raise
    except Exception as exc:
        raise _amqp_error(exc, config, target) from exc
    finally:
        if connection is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await connection.close()


class RabbitMqConnector:
    async def check(self, config: RabbitMqConfig, context: ConnectContext) -> CheckResult:
        async with _connection(config, context) as connection:
            properties = connection.server_properties or {}
        details = {
            key: _text(properties.get(key))
            for key in ("product", "cluster_name", "platform")
            if properties.get(key) is not None
        }
        details["vhost"] = config.vhost
        return CheckResult(server_version=_text(properties.get("version")), details=details)

    async def discover(self, config: RabbitMqConfig, context: ConnectContext) -> Discovery:
        if config.management_url:
            return await _management_discovery(config, context)
        if not config.queues:
            raise SourceError(
                SourceErrorCode.NOT_SUPPORTED,
                "AMQP cannot list a broker's queues: name them in `queues`, or set "
                "`management_url` to the management HTTP API",
            )
        return Discovery(objects=await _declared_queues(config, context))

    async def preview(
        self, config: RabbitMqConfig, context: ConnectContext, object_name: str, limit: int
    ) -> Preview:
        raise SourceError(
            SourceErrorCode.NOT_SUPPORTED,
            "RabbitMQ has no preview: reading a queue takes its messages off it (putting them "
            "back redelivers and reorders them), so this source only lists queues and counts",
        )


async def _declared_queues(
    config: RabbitMqConfig, context: ConnectContext
) -> list[DiscoveredObject]:
    """Each configured queue's counts by a passive declare (it never creates a queue)."""
    from aiormq import exceptions as amqp

    objects: list[DiscoveredObject] = []
    async with _connection(config, context) as connection:
        channel = None
        for name in dict.fromkeys(config.queues):
            if channel is None or channel.is_closed:
                channel = await connection.channel()
            details: dict[str, Any]
            try:
                declared = await channel.queue_declare(name, passive=True)
            except amqp.ChannelNotFoundEntity:
                details = {"exists": False}
            except amqp.ChannelAccessRefused:
                details = {"exists": None, "access": "refused"}
            except amqp.ChannelLockedResource:
                details = {"exists": True, "exclusive_to_another_connection": True}
            else:
                details = {
                    "exists": True,
                    "messages": declared.message_count,
                    "consumers": declared.consumer_count,
                }
            objects.append(DiscoveredObject(name=name, kind="queue", details=details))
    return objects


async def _management_discovery(config: RabbitMqConfig, context: ConnectContext) -> Discovery:
    assert config.management_url is not None
    base = httpx.URL(config.management_url)
    host, port = url_host_port(config.management_url)
    target = f"the RabbitMQ management API at {host}:{port}"
    address = await context.address(host, port)
    vhost = quote(config.vhost, safe="")
    async with httpx.AsyncClient(
        auth=(config.username, reveal(config.password)),
        timeout=context.timeout_seconds,
        verify=_management_tls(config),
        follow_redirects=False,
    ) as client:

        async def listing(kind: str, columns: str) -> tuple[list[dict[str, Any]], bool]:
            path = base.path.rstrip("/") + f"/api/{kind}/{vhost}"
            url = base.copy_with(host=address, raw_path=path.encode())
            return await _pages(client, url, base, columns, target, config)

        try:
            async with asyncio.timeout(context.timeout_seconds):
                queues, more_queues = await listing("queues", QUEUE_FIELDS)
                exchanges, more_exchanges = await listing("exchanges", EXCHANGE_FIELDS)
        except SourceError:
            raise
        except (httpx.TimeoutException, TimeoutError):
            raise timeout_error(target) from None
        except httpx.HTTPError as exc:
            cause = os_error_in(exc)
            raise (
                network_error(cause, target)
                if cause is not None
                else SourceError(SourceErrorCode.UNREACHABLE, f"{target}: {type(exc).__name__}")
            ) from exc
    objects = [_queue_object(item) for item in queues if item.get("name")]
    objects += [
        DiscoveredObject(
            name=item["name"],
            kind="exchange",
            details={key: item.get(key) for key in ("type", "durable", "auto_delete", "internal")},
        )
        for item in exchanges
        # The default exchange ("") and the amq.* ones exist on every virtual host.
        if item.get("name") and not str(item["name"]).startswith("amq.")
    ]
    truncated = more_queues or more_exchanges or len(objects) > MAX_DISCOVERED
    return Discovery(objects=objects[:MAX_DISCOVERED], truncated=truncated)


def _management_tls(config: RabbitMqConfig) -> ssl.SSLContext | bool:
    """An https management API is checked like the broker (its CA, `verify`) when the broker
    uses TLS, else against the public CAs."""
    if not config.tls.enabled:
        return True
    tls = TlsOptions(
        enabled=True, verify=config.tls.verify, ca_certificate=config.tls.ca_certificate
    )
    return tls.context() or True


def _queue_object(item: dict[str, Any]) -> DiscoveredObject:
    keys = ("type", "state", "durable", "auto_delete", "exclusive", "messages")
    details = {key: item.get(key) for key in keys}
    details |= {
        "messages_ready": item.get("messages_ready"),
        "messages_unacknowledged": item.get("messages_unacknowledged"),
        "consumers": item.get("consumers"),
    }
    return DiscoveredObject(name=str(item["name"]), kind="queue", details=details)


async def _pages(
    client: httpx.AsyncClient,
    url: httpx.URL,
    base: httpx.URL,
    columns: str,
    target: str,
    config: RabbitMqConfig,
) -> tuple[list[dict[str, Any]], bool]:
    """Every item of a listing, page by page up to MAX_DISCOVERED, and whether there was
    more. Requests go to the checked address; the name stays in Host and in TLS (SNI)."""
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        response = await client.get(
            url,
            params={"page": page, "page_size": PAGE_SIZE, "columns": columns},
            headers={"Host": base.netloc.decode()},
            extensions={"sni_hostname": base.host} if base.scheme == "https" else {},
        )
        body = _management_answer(response, target, config)
        if isinstance(body, list):  # a management API without pagination
            return body[:MAX_DISCOVERED], len(body) > MAX_DISCOVERED
        items += body.get("items") or []
        if page >= int(body.get("page_count") or 1) or len(items) >= MAX_DISCOVERED:
            return items[:MAX_DISCOVERED], page < int(body.get("page_count") or 1)
        page += 1


def _management_answer(response: httpx.Response, target: str, config: RabbitMqConfig) -> Any:
    if response.status_code == 401:
        raise SourceError(
            SourceErrorCode.AUTH_FAILED, f"{target} refused user {config.username!r} (401)"
        )
    if response.status_code == 403:
        raise SourceError(
            SourceErrorCode.PERMISSION_DENIED,
            f"{target}: user {config.username!r} may not read virtual host {config.vhost!r}",
        )
    if response.status_code == 404:
        raise SourceError(
            SourceErrorCode.NOT_FOUND,
            f"{target} knows no virtual host {config.vhost!r} (or the URL is not the "
            "management API's)",
        )
    if response.status_code != 200:
        raise SourceError(
            SourceErrorCode.PROTOCOL_ERROR, f"{target} answered HTTP {response.status_code}"
        )
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, list | dict):
        raise SourceError(
            SourceErrorCode.PROTOCOL_ERROR, f"{target} did not answer as the management API"
        )
    return body


SOURCE_TYPE = SourceType(
    name="rabbitmq",
    display_name="RabbitMQ",
    category=SourceCategory.STREAMING,
    config_model=RabbitMqConfig,
    connector=RabbitMqConnector(),
    description="Queues and exchanges of a RabbitMQ virtual host, with message and consumer "
    "counts; no preview (reading a queue consumes it)",
    drivers=("aiormq",),
    extra="rabbitmq",
    can_preview=False,
)
