"""NATS against the server on 127.0.0.1 (TEST_NATS_URL, JetStream on): streams of each test's
own, deleted afterwards. Logins are tested against a nats-server this module starts on a free
port with a user and password (and without JetStream)."""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from creativeflow.datasources.base import (
    ConnectContext,
    SourceError,
    SourceErrorCode,
    secret_field_paths,
)
from creativeflow.datasources.messaging.nats import SOURCE_TYPE, NatsConfig
from tests.datasources.servers import ServerAddress, closed_port

CONNECTOR: Any = SOURCE_TYPE.connector
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
SEED = "SU" + "A" * 56  # the shape of a user NKey seed


def config(**fields: Any) -> NatsConfig:
    return NatsConfig.model_validate({"type": "nats", "servers": ["nats://127.0.0.1"]} | fields)


def server_config(server: ServerAddress, **fields: Any) -> NatsConfig:
    return config(**({"servers": [f"nats://{server.host}:{server.port}"]} | fields))


def names(exc: pytest.ExceptionInfo[ValidationError], loc: tuple[Any, ...]) -> bool:
    """Whether an error of the validation points at `loc` (or inside it)."""
    return any(error["loc"][: len(loc)] == loc for error in exc.value.errors())


# -- config --------------------------------------------------------------------------------


def test_a_good_config_normalises_its_servers() -> None:
    parsed = config(servers=["nats://N1.example.com", "tls://10.0.0.2:4443", "nats://[::1]:4222"])

    assert parsed.servers == [
        "nats://n1.example.com:4222",
        "tls://10.0.0.2:4443",
        "nats://[::1]:4222",
    ]
    assert parsed.endpoints() == [
        (False, "n1.example.com", 4222),
        (True, "10.0.0.2", 4443),
        (False, "::1", 4222),
    ]
    assert parsed.auth.mode == "none"


def test_every_auth_mode_keeps_its_secret_as_a_secret() -> None:
    assert secret_field_paths(NatsConfig) == [
        "auth.password",
        "auth.token",
        "auth.seed",
        "auth.credentials",
    ]
    parsed = config(auth={"mode": "token", "token": "t0ken"})
    assert "t0ken" not in parsed.model_dump_json()


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"servers": ["http://n1:4222"]}, ("servers", 0)),
        ({"servers": ["nats://bad_host:4222"]}, ("servers", 0)),
        ({"servers": ["nats://n1:4222", "nats://n1:0"]}, ("servers", 1)),
        ({"servers": ["nats://n1:65536"]}, ("servers", 0)),
        ({"servers": ["n1:4222"]}, ("servers", 0)),
        ({"servers": ["nats://u:p@n1:4222"]}, ("servers", 0)),
        ({"servers": ["nats://n1:4222/path"]}, ("servers", 0)),
        ({"servers": []}, ("servers",)),
        (
            {"auth": {"mode": "user_password", "username": "u"}},
            ("auth", "user_password", "password"),
        ),
        (
            {"auth": {"mode": "user_password", "password": "p"}},
            ("auth", "user_password", "username"),
        ),
        ({"auth": {"mode": "token"}}, ("auth", "token", "token")),
        ({"auth": {"mode": "nkey", "seed": "not-a-seed"}}, ("auth", "nkey", "seed")),
        ({"auth": {"mode": "creds", "credentials": "x"}}, ("auth", "creds", "credentials")),
        ({"auth": {"mode": "kerberos"}}, ("auth",)),
        ({"tls": {"ca_certificate": "x"}}, ("tls",)),
    ],
)
def test_config_mistakes_name_the_field(fields: dict[str, Any], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as exc:
        config(**fields)

    assert names(exc, loc)


def test_a_bad_seed_is_not_repeated_in_the_error() -> None:
    seed = "SX" + uuid.uuid4().hex

    with pytest.raises(ValidationError) as exc:
        config(auth={"mode": "nkey", "seed": seed})

    assert seed not in str(exc.value)


async def test_nkey_auth_without_nkeys_says_what_to_install(context: ConnectContext) -> None:
    if importlib.util.find_spec("nkeys") is not None:
        pytest.skip("nkeys is installed here")

    with pytest.raises(SourceError) as exc:
        await CONNECTOR.check(config(auth={"mode": "nkey", "seed": SEED}), context)

    assert exc.value.code is SourceErrorCode.DRIVER_MISSING
    assert "creativeflow[nats]" in exc.value.message


# -- the server ----------------------------------------------------------------------------


async def test_check_answers_the_server_version(
    nats_server: ServerAddress, context: ConnectContext
) -> None:
    result = await CONNECTOR.check(server_config(nats_server), context)

    assert result.server_version and result.server_version[0].isdigit()
    assert result.details["jetstream"] is True
    assert result.details["server_name"]


@pytest.fixture
async def stream(nats_server: ServerAddress) -> AsyncIterator[str]:
    """A stream of this test's own: five JSON messages, then one that is not text."""
    import nats

    name = f"cf_test_{uuid.uuid4().hex[:10]}"
    client = await nats.connect(f"nats://{nats_server.host}:{nats_server.port}")
    try:
        jetstream = client.jetstream()
        await jetstream.add_stream(name=name, subjects=[f"{name}.>"])
        for n in range(5):
            await jetstream.publish(f"{name}.orders", f'{{"n": {n}}}'.encode())
        await jetstream.publish(f"{name}.raw", b"\xff\x00\x01")
        yield name
        await jetstream.delete_stream(name)
    finally:
        await client.close()


async def test_discover_lists_jetstream_streams(
    nats_server: ServerAddress, context: ConnectContext, stream: str
) -> None:
    discovery = await CONNECTOR.discover(server_config(nats_server), context)

    found = {item.name: item for item in discovery.objects}
    assert found[stream].kind == "stream"
    assert found[stream].details["subjects"] == [f"{stream}.>"]
    assert found[stream].details["messages"] == 6
    assert found[stream].details["last_seq"] == 6
    assert found[stream].details["bytes"] > 0


async def test_preview_reads_the_last_messages_without_consuming(
    nats_server: ServerAddress, context: ConnectContext, stream: str
) -> None:
    source = server_config(nats_server)

    result = await CONNECTOR.preview(source, context, stream, 3)
    again = await CONNECTOR.discover(source, context)

    assert [row["seq"] for row in result.rows] == [4, 5, 6]
    assert [row["subject"] for row in result.rows] == [f"{stream}.orders"] * 2 + [f"{stream}.raw"]
    assert result.rows[0]["data"] == {"n": 3}
    assert result.rows[2]["data"] == "/wAB"  # not text: base64
    assert result.truncated
    types = {column.name: column.type for column in result.columns}
    assert types == {"seq": "integer", "subject": "string", "time": "datetime", "data": "string"}
    after = next(item for item in again.objects if item.name == stream)
    assert after.details["messages"] == 6
    assert after.details["consumers"] == 0


async def test_preview_uses_direct_get_where_the_stream_allows_it(
    nats_server: ServerAddress, context: ConnectContext
) -> None:
    import nats

    name = f"cf_test_{uuid.uuid4().hex[:10]}"
    client = await nats.connect(f"nats://{nats_server.host}:{nats_server.port}")
    try:
        jetstream = client.jetstream()
        await jetstream.add_stream(name=name, subjects=[f"{name}.>"], allow_direct=True)
        for n in range(3):
            await jetstream.publish(f"{name}.ticks", str(n).encode())
        try:
            result = await CONNECTOR.preview(server_config(nats_server), context, name, 2)
        finally:
            await jetstream.delete_stream(name)
    finally:
        await client.close()

    assert [(row["seq"], row["data"]) for row in result.rows] == [(2, 1), (3, 2)]
    assert all(row["time"] for row in result.rows)


async def test_preview_of_all_messages_is_not_truncated(
    nats_server: ServerAddress, context: ConnectContext, stream: str
) -> None:
    result = await CONNECTOR.preview(server_config(nats_server), context, stream, 100)

    assert [row["seq"] for row in result.rows] == [1, 2, 3, 4, 5, 6]
    assert not result.truncated


async def test_an_unknown_stream_is_not_found(
    nats_server: ServerAddress, context: ConnectContext
) -> None:
    with pytest.raises(SourceError) as exc:
        await CONNECTOR.preview(server_config(nats_server), context, "cf_no_such_stream", 5)

    assert exc.value.code is SourceErrorCode.NOT_FOUND


@pytest.mark.parametrize("name", ["a.b", "a b", "orders.*", "", "a/b"])
async def test_a_malformed_stream_name_is_an_invalid_object(
    context: ConnectContext, name: str
) -> None:
    with pytest.raises(SourceError) as exc:
        await CONNECTOR.preview(config(), context, name, 5)

    assert exc.value.code is SourceErrorCode.INVALID_OBJECT


async def test_tls_against_a_plaintext_server_is_refused(
    nats_server: ServerAddress, context: ConnectContext
) -> None:
    source = config(servers=[f"tls://{nats_server.host}:{nats_server.port}"])

    with pytest.raises(SourceError) as exc:
        await CONNECTOR.check(source, context)

    assert exc.value.code is SourceErrorCode.TLS_ERROR


async def test_the_first_answering_server_is_used(
    nats_server: ServerAddress, context: ConnectContext
) -> None:
    servers = [f"nats://127.0.0.1:{closed_port()}", f"nats://{nats_server.host}:{nats_server.port}"]

    result = await CONNECTOR.check(config(servers=servers), context)

    assert result.details["server"] == f"{nats_server.host}:{nats_server.port}"


async def test_a_closed_port_is_connection_refused(context: ConnectContext) -> None:
    with pytest.raises(SourceError) as exc:
        await CONNECTOR.check(config(servers=[f"nats://127.0.0.1:{closed_port()}"]), context)

    assert exc.value.code is SourceErrorCode.CONNECTION_REFUSED


async def test_a_silent_port_times_out_in_time(silent_port: int, file_root: Any) -> None:
    quick = ConnectContext(timeout_seconds=1.0, allow_private_hosts=True, file_root=file_root)
    started = time.monotonic()

    with pytest.raises(SourceError) as exc:
        await CONNECTOR.check(config(servers=[f"nats://127.0.0.1:{silent_port}"]), quick)

    assert exc.value.code is SourceErrorCode.TIMEOUT
    assert time.monotonic() - started < 2.0


async def test_loopback_is_refused_in_production(guarded_context: ConnectContext) -> None:
    with pytest.raises(SourceError) as exc:
        await CONNECTOR.check(config(), guarded_context)

    assert exc.value.code is SourceErrorCode.HOST_REFUSED


# -- a server with a login -----------------------------------------------------------------


@pytest.fixture(scope="module")
def login_server() -> Iterator[int]:
    """A nats-server of this module's own on a free port: user `reader`, password `open-sesame`,
    no JetStream."""
    if not shutil.which(NATS_SERVER):
        pytest.skip(f"{NATS_SERVER} is not installed")
    port = closed_port()
    process = subprocess.Popen(  # noqa: S603  (our own arguments)
        [
            NATS_SERVER,
            "-a",
            "127.0.0.1",
            "-p",
            str(port),
            "--user",
            "reader",
            "--pass",
            "open-sesame",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the test nats-server did not start")
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def login_config(port: int, **auth: Any) -> NatsConfig:
    return config(servers=[f"nats://127.0.0.1:{port}"], **({"auth": auth} if auth else {}))


async def test_the_right_login_connects(login_server: int, context: ConnectContext) -> None:
    source = login_config(
        login_server, mode="user_password", username="reader", password="open-sesame"
    )

    result = await CONNECTOR.check(source, context)

    assert result.details["jetstream"] is False


async def test_a_wrong_password_is_auth_failed_without_the_password(
    login_server: int, context: ConnectContext
) -> None:
    secret = "wrong-" + uuid.uuid4().hex
    source = login_config(login_server, mode="user_password", username="reader", password=secret)

    with pytest.raises(SourceError) as exc:
        await CONNECTOR.check(source, context)

    assert exc.value.code is SourceErrorCode.AUTH_FAILED
    assert secret not in exc.value.message


async def test_a_wrong_token_is_auth_failed(login_server: int, context: ConnectContext) -> None:
    secret = "token-" + uuid.uuid4().hex

    with pytest.raises(SourceError) as exc:
        await CONNECTOR.check(login_config(login_server, mode="token", token=secret), context)

    assert exc.value.code is SourceErrorCode.AUTH_FAILED
    assert secret not in exc.value.message


async def test_no_credentials_for_a_server_that_wants_them(
    login_server: int, context: ConnectContext
) -> None:
    with pytest.raises(SourceError) as exc:
        await CONNECTOR.check(login_config(login_server), context)

    assert exc.value.code is SourceErrorCode.AUTH_FAILED
    assert "requires authentication" in exc.value.message


async def test_discovery_without_jetstream_is_not_supported(
    login_server: int, context: ConnectContext
) -> None:
    source = login_config(
        login_server, mode="user_password", username="reader", password="open-sesame"
    )

    with pytest.raises(SourceError) as exc:
        await CONNECTOR.discover(source, context)

    assert exc.value.code is SourceErrorCode.NOT_SUPPORTED
    assert "JetStream" in exc.value.message
