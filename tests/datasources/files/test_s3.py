"""s3 against moto's S3 server (and, for the answers moto never gives, a small server that
speaks S3's error documents)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from creativeflow.datasources.base import (
    ConnectContext,
    SourceError,
    SourceErrorCode,
    secret_field_paths,
)
from creativeflow.datasources.files import s3
from creativeflow.datasources.files.s3 import SOURCE_TYPE, S3Config
from tests.assets.s3_server import S3Server, s3_bucket, s3_server  # noqa: F401
from tests.datasources.files.conftest import PEOPLE_CSV, parquet_bytes, xlsx_bytes
from tests.datasources.servers import closed_port
from tests.datasources.web.tls import make_certificates, serve_tls_app
from tests.providers.fake_servers import serve_app

connector = SOURCE_TYPE.connector
SECRET = "wJalrXUtnFEMI-very-secret-key"


def config(**fields: Any) -> S3Config:
    return S3Config.model_validate({"type": "s3", "bucket": "my-bucket", **fields})


def moto_config(server: S3Server, bucket: str, **fields: Any) -> S3Config:
    return config(
        bucket=bucket,
        endpoint_url=server.endpoint_url,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
        **fields,
    )


def error_locations(**fields: Any) -> list[tuple[Any, ...]]:
    with pytest.raises(ValidationError) as caught:
        config(**fields)
    return [error["loc"] for error in caught.value.errors()]


async def fails(code: SourceErrorCode, operation) -> str:
    with pytest.raises(SourceError) as caught:
        await operation
    assert caught.value.code == code, caught.value.message
    return caught.value.message


@pytest.fixture
def objects(s3_server: S3Server, s3_bucket: str) -> str:  # noqa: F811
    """The bucket with a file of each format under `exports/`, and more besides."""
    client = s3_server.client()
    contents: dict[str, bytes] = {
        "exports/people.csv": PEOPLE_CSV.encode(),
        "exports/events.jsonl": b'{"id": 1}\n{"id": 2}\n',
        "exports/rows.json": json.dumps({"data": [{"a": 1}, {"a": 2}]}).encode(),
        "exports/items.parquet": parquet_bytes(),
        "exports/book.xlsx": xlsx_bytes(),
        "exports/empty.csv": b"",
        "exports/notes.txt": b"not a table",
        "exports/2024/january.csv": b"a\n1\n",
        "exports/2025/march.csv": b"a\n2\n",
        "top.csv": b"x\n1\n",
    }
    for key, body in contents.items():
        client.put_object(Bucket=s3_bucket, Key=key, Body=body)
    return s3_bucket


# -- config ------------------------------------------------------------------------------------


def test_good_configs_and_their_hosts() -> None:
    aws = config()
    assert aws.hosts() == [("my-bucket.s3.us-east-1.amazonaws.com", 443)]
    assert config(path_style=True, region="eu-west-1").hosts() == [
        ("s3.eu-west-1.amazonaws.com", 443)
    ]
    assert config(bucket="my.dotted.bucket").hosts() == [("s3.us-east-1.amazonaws.com", 443)]
    minio = config(endpoint_url="http://minio.example.com:9000/", prefix="/exports/2024/")
    assert minio.hosts() == [("minio.example.com", 9000)] and minio.prefix == "exports/2024"
    hosted = config(endpoint_url="https://storage.example.com", path_style=False)
    assert hosted.hosts() == [("my-bucket.storage.example.com", 443)]
    keyed = config(access_key_id="AKIA", secret_access_key=SECRET)
    assert keyed.secret_access_key is not None and SECRET not in repr(keyed)
    assert set(secret_field_paths(S3Config)) == {"access_key_id", "secret_access_key"}
    assert SOURCE_TYPE.driver_error() is None and SOURCE_TYPE.extra == "s3"


@pytest.mark.parametrize(
    ("fields", "location"),
    [
        ({"bucket": "My_Bucket"}, ("bucket",)),
        ({"bucket": "ab"}, ("bucket",)),
        ({"bucket": "10.0.0.1"}, ("bucket",)),
        ({"region": "US East"}, ("region",)),
        ({"endpoint_url": "ftp://minio.example.com"}, ("endpoint_url",)),
        ({"endpoint_url": "https://minio.example.com/s3"}, ("endpoint_url",)),
        ({"endpoint_url": "https://key:secret@minio.example.com"}, ("endpoint_url",)),
        ({"access_key_id": "AKIA"}, ("secret_access_key",)),
        ({"secret_access_key": SECRET}, ("secret_access_key",)),
        ({"prefix": "a//b"}, ("prefix",)),
        ({"prefix": "a/../b"}, ("prefix",)),
        ({"csv_delimiter": ""}, ("csv_delimiter",)),
        ({"path": "x.csv"}, ("path",)),
    ],
)
def test_config_mistakes_name_the_field(fields: dict[str, Any], location: tuple[Any, ...]) -> None:
    assert location in error_locations(**fields)


# -- against moto ------------------------------------------------------------------------------


async def test_check(context: ConnectContext, s3_server: S3Server, objects: str) -> None:  # noqa: F811
    result = await connector.check(moto_config(s3_server, objects), context)
    assert result.details["bucket"] == objects
    assert result.details["objects_sampled"] == 10 and result.details["more_objects"] is False
    under = await connector.check(moto_config(s3_server, objects, prefix="exports/2024"), context)
    assert under.details["objects_sampled"] == 1 and under.details["prefix"] == "exports/2024"


async def test_check_a_public_bucket_without_keys(
    context: ConnectContext,
    s3_server: S3Server,  # noqa: F811
    objects: str,
) -> None:
    public = config(bucket=objects, endpoint_url=s3_server.endpoint_url)
    assert (await connector.check(public, context)).details["objects_sampled"] == 10


async def test_discover_prefixes_and_objects(
    context: ConnectContext,
    s3_server: S3Server,  # noqa: F811
    objects: str,
) -> None:
    top = await connector.discover(moto_config(s3_server, objects), context)
    assert [(o.name, o.kind) for o in top.objects] == [("exports/", "prefix"), ("top.csv", "file")]
    exports = await connector.discover(moto_config(s3_server, objects, prefix="exports"), context)
    names = [o.name for o in exports.objects]
    assert names[:2] == ["exports/2024/", "exports/2025/"]
    by_name = {o.name: o for o in exports.objects}
    assert by_name["exports/items.parquet"].details["format"] == "parquet"
    assert by_name["exports/people.csv"].details["size"] == len(PEOPLE_CSV)
    assert by_name["exports/notes.txt"].details["format"] is None
    assert by_name["exports/book.xlsx"].details["modified"]
    assert exports.truncated is False


async def test_discover_is_capped(
    context: ConnectContext,
    s3_server: S3Server,  # noqa: F811
    objects: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(s3, "MAX_DISCOVERED", 3)
    capped = await connector.discover(moto_config(s3_server, objects, prefix="exports"), context)
    assert len(capped.objects) == 3 and capped.truncated is True


async def test_preview_each_format(
    context: ConnectContext,
    s3_server: S3Server,  # noqa: F811
    objects: str,
) -> None:
    source = moto_config(s3_server, objects, prefix="exports")
    people = await connector.preview(source, context, "exports/people.csv", 2)
    assert people.rows[0] == {
        "id": 1,
        "name": "Ada",
        "score": 9.5,
        "active": True,
        "joined": "2024-01-02",
    }
    assert people.truncated is True
    assert {c.name: c.type for c in people.columns}["joined"] == "date"
    events = await connector.preview(source, context, "exports/events.jsonl", 10)
    assert events.rows == [{"id": 1}, {"id": 2}] and not events.truncated
    rows = await connector.preview(source, context, "exports/rows.json", 10)
    assert rows.rows == [{"a": 1}, {"a": 2}]
    items = await connector.preview(source, context, "exports/items.parquet", 4)
    assert [row["id"] for row in items.rows] == [0, 1, 2, 3] and items.truncated
    totals = await connector.preview(source, context, "exports/book.xlsx#Totals", 10)
    assert totals.rows[-1] == {"region": "east", "total": 7}
    empty = await connector.preview(source, context, "exports/empty.csv", 10)
    assert empty.rows == [] and empty.columns == []


async def test_preview_reads_a_range_of_large_text_objects(
    context: ConnectContext,
    s3_server: S3Server,  # noqa: F811
    s3_bucket: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(s3, "RANGE_BYTES", 100)
    body = "n,text\n" + "".join(f"{i},row number {i}\n" for i in range(50))
    s3_server.client().put_object(Bucket=s3_bucket, Key="big.csv", Body=body.encode())
    preview = await connector.preview(moto_config(s3_server, s3_bucket), context, "big.csv", 1000)
    # 100 bytes hold the header (7) and six whole rows (15 each); the cut seventh is dropped.
    assert [row["n"] for row in preview.rows] == [0, 1, 2, 3, 4, 5]
    assert preview.truncated is True
    assert all(row["text"] == f"row number {row['n']}" for row in preview.rows)


async def test_preview_refuses_objects_too_large_to_read_whole(
    context: ConnectContext,
    s3_server: S3Server,  # noqa: F811
    objects: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(s3, "WHOLE_BYTES", 1024)
    message = await fails(
        SourceErrorCode.INVALID_OBJECT,
        connector.preview(moto_config(s3_server, objects), context, "exports/items.parquet", 5),
    )
    assert "too large to preview" in message


async def test_preview_failures(
    context: ConnectContext,
    s3_server: S3Server,  # noqa: F811
    objects: str,
) -> None:
    source = moto_config(s3_server, objects, prefix="exports")
    message = await fails(
        SourceErrorCode.NOT_FOUND, connector.preview(source, context, "exports/gone.csv", 5)
    )
    assert message == f"there is no object exports/gone.csv in the bucket {objects}"
    await fails(
        SourceErrorCode.NOT_FOUND, connector.preview(source, context, "exports/gone.json", 5)
    )
    message = await fails(
        SourceErrorCode.INVALID_OBJECT, connector.preview(source, context, "top.csv", 5)
    )
    assert "not under the prefix exports/" in message
    for bad in ("exports/notes.txt", "exports/2024/", "", "exports//x.csv", "exports/../top.csv"):
        await fails(SourceErrorCode.INVALID_OBJECT, connector.preview(source, context, bad, 5))
    await fails(
        SourceErrorCode.NOT_FOUND, connector.preview(source, context, "exports/book.xlsx#Nope", 5)
    )


async def test_unknown_bucket(context: ConnectContext, s3_server: S3Server) -> None:  # noqa: F811
    source = moto_config(s3_server, "no-such-bucket-here")
    for operation in (
        connector.check(source, context),
        connector.discover(source, context),
        connector.preview(source, context, "x.csv", 5),
    ):
        message = await fails(SourceErrorCode.NOT_FOUND, operation)
        assert "no-such-bucket-here" in message


# -- the network -------------------------------------------------------------------------------


async def test_closed_port(context: ConnectContext) -> None:
    source = config(endpoint_url=f"http://127.0.0.1:{closed_port()}")
    message = await fails(SourceErrorCode.CONNECTION_REFUSED, connector.check(source, context))
    assert message == f"the S3 endpoint 127.0.0.1:{source.hosts()[0][1]} refused the connection"


async def test_timeout(file_root, silent_port: int) -> None:
    context = ConnectContext(timeout_seconds=1.0, allow_private_hosts=True, file_root=file_root)
    source = config(endpoint_url=f"http://127.0.0.1:{silent_port}")
    started = time.monotonic()
    await fails(SourceErrorCode.TIMEOUT, connector.check(source, context))
    assert time.monotonic() - started < 2.5


async def test_private_hosts_are_refused(guarded_context: ConnectContext) -> None:
    source = config(endpoint_url="http://127.0.0.1:9000")
    for operation in (
        connector.check(source, guarded_context),
        connector.discover(source, guarded_context),
        connector.preview(source, guarded_context, "x.csv", 5),
    ):
        await fails(SourceErrorCode.HOST_REFUSED, operation)


async def test_unknown_host(context: ConnectContext) -> None:
    source = config(endpoint_url="http://no-such-host.invalid:9000")
    await fails(SourceErrorCode.HOST_NOT_FOUND, connector.check(source, context))


_ERROR = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>{}</Code><Message>{}</Message></Error>'


async def _s3_errors(request: Request) -> Response:
    """Answers as S3 does to a bad key (first path segment: the bucket picks the answer)."""
    bucket = request.url.path.strip("/").split("/")[0]
    code, status = {
        "bad-key": ("InvalidAccessKeyId", 403),
        "bad-signature": ("SignatureDoesNotMatch", 403),
        "denied": ("AccessDenied", 403),
        "elsewhere": ("AuthorizationHeaderMalformed", 400),
    }[bucket]
    body = _ERROR.format(code, "The AWS Access Key Id you provided does not exist in our records.")
    return Response(body, status_code=status, media_type="application/xml")


@pytest.fixture(scope="module")
def s3_errors() -> Iterator[str]:
    app = Starlette(routes=[Route("/{path:path}", _s3_errors, methods=["GET", "HEAD"])])
    with serve_app(app) as url:
        yield url


@pytest.mark.parametrize(
    ("bucket", "code"),
    [
        ("bad-key", SourceErrorCode.AUTH_FAILED),
        ("bad-signature", SourceErrorCode.AUTH_FAILED),
        ("denied", SourceErrorCode.PERMISSION_DENIED),
        ("elsewhere", SourceErrorCode.ERROR),
    ],
)
async def test_rejected_credentials(
    context: ConnectContext, s3_errors: str, bucket: str, code: SourceErrorCode
) -> None:
    source = config(
        bucket=bucket, endpoint_url=s3_errors, access_key_id="AKIAEXAMPLE", secret_access_key=SECRET
    )
    for operation in (
        connector.check(source, context),
        connector.discover(source, context),
        connector.preview(source, context, "data.csv", 5),
        connector.preview(source, context, "data.parquet", 5),
    ):
        message = await fails(code, operation)
        assert SECRET not in message and "AKIAEXAMPLE" not in message


# -- TLS and peers that are not S3 -------------------------------------------------------------

_LISTING = (
    '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>tls</Name>'
    "<KeyCount>1</KeyCount><IsTruncated>false</IsTruncated><Contents><Key>a.csv</Key>"
    '<LastModified>2024-01-01T00:00:00.000Z</LastModified><Size>3</Size><ETag>"x"</ETag>'
    "</Contents></ListBucketResult>"
)


async def _listing(request: Request) -> Response:
    return Response(_LISTING, media_type="application/xml")


@pytest.fixture(scope="module")
def tls_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    """An HTTPS S3 endpoint on localhost with a certificate from a private CA: (port, CA)."""
    certificates = make_certificates(tmp_path_factory.mktemp("tls"))
    app = Starlette(routes=[Route("/{path:path}", _listing)])
    with serve_tls_app(app, certificates) as port:
        yield port, certificates.ca_pem


async def test_tls_with_a_private_ca(context: ConnectContext, tls_store: tuple[int, str]) -> None:
    port, ca_pem = tls_store
    untrusted = config(bucket="tls", endpoint_url=f"https://localhost:{port}")
    message = await fails(SourceErrorCode.TLS_ERROR, connector.check(untrusted, context))
    assert "certificate not trusted (UnknownIssuer)" in message
    trusted = config(bucket="tls", endpoint_url=f"https://localhost:{port}", ca_certificate=ca_pem)
    assert (await connector.check(trusted, context)).details["objects_sampled"] == 1
    assert ("ca_certificate",) in error_locations(
        endpoint_url="http://localhost:9000", ca_certificate=ca_pem
    )


def _raw_peer(reply: bytes) -> Iterator[int]:
    """A TCP server that reads a request, answers `reply` (maybe nothing) and hangs up."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                connection.sendall(reply)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()


@pytest.mark.parametrize(
    ("reply", "scheme", "code", "complaint"),
    [
        (b"", "http", SourceErrorCode.PROTOCOL_ERROR, "closed the connection"),
        (b"SSH-2.0-OpenSSH_9.6\r\n", "http", SourceErrorCode.PROTOCOL_ERROR, "does not speak HTTP"),
        (
            b"HTTP/1.1 400 Bad\r\nContent-Length: 0\r\n\r\n",
            "https",
            SourceErrorCode.TLS_ERROR,
            "TLS",
        ),
        (
            b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n",
            "http",
            SourceErrorCode.ERROR,
            "HTTP 500",
        ),
    ],
)
async def test_peers_that_are_not_s3(
    context: ConnectContext, reply: bytes, scheme: str, code: SourceErrorCode, complaint: str
) -> None:
    for port in _raw_peer(reply):
        source = config(endpoint_url=f"{scheme}://127.0.0.1:{port}")
        assert complaint in await fails(code, connector.check(source, context))


async def test_the_platforms_aws_settings_stay_out(
    context: ConnectContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """obstore reads AWS_* variables; a source must never borrow the platform's credentials
    (a public-bucket config unsigned, a keyed one without the platform's session token) nor
    its endpoint."""
    seen: list[dict[str, str]] = []

    async def record(request: Request) -> Response:
        seen.append(dict(request.headers))
        return await _listing(request)

    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIAPLATFORM",
        "AWS_SECRET_ACCESS_KEY": "platform-secret",
        "AWS_SESSION_TOKEN": "platform-session-token",
        "AWS_ENDPOINT": "http://127.0.0.1:1",
        "AWS_SKIP_SIGNATURE": "false",
    }.items():
        monkeypatch.setenv(name, value)
    app = Starlette(routes=[Route("/{path:path}", record)])
    with serve_app(app) as url:
        await connector.check(config(bucket="public", endpoint_url=url), context)
        keyed = config(
            bucket="keyed", endpoint_url=url, access_key_id="AKIASOURCE", secret_access_key=SECRET
        )
        await connector.check(keyed, context)
    public_headers, keyed_headers = seen
    assert "authorization" not in public_headers
    assert "AKIASOURCE" in keyed_headers["authorization"]
    assert "x-amz-security-token" not in keyed_headers
