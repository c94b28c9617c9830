"""SQL Server cannot run here and pymssql is not installed on purpose: the config, the clear
DRIVER_MISSING answer, and (where the driver exists) a refused connection."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from pydantic import ValidationError

from creativeflow.datasources.base import (
    ConnectContext,
    SourceError,
    SourceErrorCode,
    secret_field_paths,
)
from creativeflow.datasources.sql.common import base_type_name, column_type, quote_bracket
from creativeflow.datasources.sql.mssql import SOURCE_TYPE, MssqlConfig, _number_and_text
from tests.datasources.servers import closed_port

CONNECTOR = SOURCE_TYPE.connector
HAS_DRIVER = importlib.util.find_spec("pymssql") is not None


def config(**values: Any) -> MssqlConfig:
    return MssqlConfig.model_validate(
        {
            "type": "mssql",
            "host": "sql.example.com",
            "database": "sales",
            "username": "reader",
            "password": "pw",
        }
        | values
    )


def test_config_defaults_and_hosts() -> None:
    parsed = config()
    assert (parsed.port, parsed.encrypt, parsed.trust_server_certificate) == (1433, True, False)
    assert parsed.hosts() == [("sql.example.com", 1433)]
    assert secret_field_paths(MssqlConfig) == ["password"]
    assert (SOURCE_TYPE.drivers, SOURCE_TYPE.extra) == (("pymssql",), "mssql")
    assert config(trust_server_certificate=True).trust_server_certificate is True
    assert config(password={"credential_id": "8c6f2a52-4a51-4c1e-9d43-2f3b1c8f0a11"}).password


@pytest.mark.parametrize(
    ("values", "loc"),
    [
        ({"host": "mssql://sql.example.com"}, ("host",)),
        ({"host": "sql.example.com,1433"}, ("host",)),
        ({"port": 0}, ("port",)),
        ({"port": 65536}, ("port",)),
        ({"database": "-sales"}, ("database",)),
        ({"username": ""}, ("username",)),
        ({"password": None}, ("password",)),
        ({"encrypt": False, "trust_server_certificate": True}, ("trust_server_certificate",)),
        ({"instance": "SQLEXPRESS"}, ("instance",)),
    ],
)
def test_config_mistakes_name_the_field(values: dict[str, Any], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        config(**values)
    # Every error is about the field (a secret's union answers one error per variant).
    assert {error["loc"][: len(loc)] for error in caught.value.errors()} == {loc}


def test_password_is_required() -> None:
    values = config().model_dump()
    del values["password"]
    with pytest.raises(ValidationError) as caught:
        MssqlConfig.model_validate(values)
    assert [error["loc"] for error in caught.value.errors()] == [("password",)]


def test_sql_server_names_and_types() -> None:
    assert quote_bracket("odd]name") == "[odd]]name]"
    assert base_type_name("nvarchar(max)") == "nvarchar"
    assert column_type("datetimeoffset(7)") == "datetime"
    assert column_type("uniqueidentifier") == "string"
    assert _number_and_text(Exception((18456, b"Login failed for user 'reader'."))) == (
        18456,
        "Login failed for user 'reader'.",
    )
    assert _number_and_text(Exception("DB-Lib error message 20009, severity 9:\nrefused"))[0] == (
        20009
    )


@pytest.mark.skipif(HAS_DRIVER, reason="pymssql is installed here")
async def test_a_missing_driver_says_which_extra(context: ConnectContext) -> None:
    error = SOURCE_TYPE.driver_error()
    assert error is not None and error.code == SourceErrorCode.DRIVER_MISSING
    assert "pymssql" in error.message and "creativeflow[mssql]" in error.message
    # Called directly, the connector says the same (before any connection attempt).
    for call in (
        CONNECTOR.check(config(), context),
        CONNECTOR.discover(config(), context),
        CONNECTOR.preview(config(), context, "dbo.orders", 5),
    ):
        with pytest.raises(SourceError) as caught:
            await call
        assert caught.value.code == SourceErrorCode.DRIVER_MISSING


async def test_closed_port_where_the_driver_exists(context: ConnectContext) -> None:
    if not HAS_DRIVER:
        pytest.skip("pymssql is not installed here")
    with pytest.raises(SourceError) as caught:
        await CONNECTOR.check(config(host="127.0.0.1", port=closed_port(), encrypt=False), context)
    assert caught.value.code in (SourceErrorCode.CONNECTION_REFUSED, SourceErrorCode.UNREACHABLE)
    assert "pw" not in caught.value.message


async def test_private_host_is_refused(guarded_context: ConnectContext) -> None:
    if not HAS_DRIVER:
        pytest.skip("pymssql is not installed here")
    with pytest.raises(SourceError) as caught:
        await CONNECTOR.check(config(host="127.0.0.1"), guarded_context)
    assert caught.value.code == SourceErrorCode.HOST_REFUSED
