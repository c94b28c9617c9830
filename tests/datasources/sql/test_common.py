from __future__ import annotations

import ssl

import pytest

from creativeflow.datasources.base import SourceError, SourceErrorCode
from creativeflow.datasources.sql import SOURCE_TYPES
from creativeflow.datasources.sql.common import (
    column_type,
    quote_backtick,
    quote_double,
    redact,
    tls_context,
)


def test_the_family_in_order() -> None:
    assert [source.name for source in SOURCE_TYPES] == ["postgresql", "mysql", "sqlite", "mssql"]
    for source in SOURCE_TYPES:
        schema = source.config_model.model_json_schema()
        assert schema["properties"]["type"]["const"] == source.name
        described = {name for name, spec in schema["properties"].items() if "description" in spec}
        assert described >= set(schema["properties"]) - {"type", "username"}


@pytest.mark.parametrize(
    ("declared", "kind"),
    [
        ("character varying(40)", "string"),
        ("int(10) unsigned zerofill", "integer"),
        ("timestamp(3) with time zone", "datetime"),
        ("time without time zone", "time"),
        ("double precision", "number"),
        ("numeric(10,2)", "number"),
        ("integer[]", "array"),
        ("jsonb", "object"),
        ("bytea", "binary"),
        ("BIGINT", "integer"),
        ("geography_of_mars", None),
        ("", None),
    ],
)
def test_declared_types_map_onto_column_types(declared: str, kind: str | None) -> None:
    assert column_type(declared) == kind


def test_identifiers_are_quoted() -> None:
    assert quote_double('a"b') == '"a""b"'
    assert quote_backtick("a`b") == "`a``b`"
    with pytest.raises(SourceError) as caught:
        quote_double("a\x00b")
    assert caught.value.code == SourceErrorCode.INVALID_OBJECT


def test_redact_removes_secrets() -> None:
    assert (
        redact("bad password hunter2 for x", "hunter2", None, "") == "bad password ******** for x"
    )


def test_tls_contexts() -> None:
    full = tls_context("db.example.com", ca_certificate=None, verify_chain=True, verify_name=True)
    assert (full.verify_mode, full.check_hostname) == (ssl.CERT_REQUIRED, True)
    chain = tls_context("db.example.com", ca_certificate=None, verify_chain=True, verify_name=False)
    assert (chain.verify_mode, chain.check_hostname) == (ssl.CERT_REQUIRED, False)
    none = tls_context("db.example.com", ca_certificate=None, verify_chain=False, verify_name=False)
    assert (none.verify_mode, none.check_hostname) == (ssl.CERT_NONE, False)
    assert full.minimum_version == ssl.TLSVersion.TLSv1_2
