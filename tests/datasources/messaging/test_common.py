"""The messaging family's shared helpers: host:port parsing and message payloads."""

from __future__ import annotations

import re

import pytest

from creativeflow.datasources.messaging.common import host_port, parse_host_port, payload_value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Broker.Example.com:9093", ("broker.example.com", 9093)),
        ("broker", ("broker", 9092)),
        ("10.1.2.3:1", ("10.1.2.3", 1)),
        ("[2001:db8::1]:65535", ("2001:db8::1", 65535)),
        ("[::1]", ("::1", 9092)),
    ],
)
def test_host_port_pairs_parse(text: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(text, 9092) == expected
    assert parse_host_port(host_port(*expected), 1) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "host:port"),
        ("broker:0", "1 to 65535"),
        ("broker:65536", "1 to 65535"),
        ("broker:port", "1 to 65535"),
        ("broker:", "1 to 65535"),
        ("kafka://broker:9092", "not a URL"),
        ("::1:9092", "brackets"),
        ("[::1:9092", "[IPv6 address]:port"),
        ("bad_host:9092", "host of"),
    ],
)
def test_mistakes_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_host_port(text, 9092)


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b'{"a": [1, 2]}', {"a": [1, 2]}),
        (b"12.5", 12.5),
        (b"true", True),
        (b"hello", "hello"),
        ("héllo".encode(), "héllo"),
        (b"\xff\x00", "/wA="),
        (b"", ""),
        (None, None),
    ],
)
def test_payloads_are_json_then_text_then_base64(data: bytes | None, value: object) -> None:
    assert payload_value(data) == value
