from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from creativeflow.datasources import base
from creativeflow.datasources.base import ConnectContext, SourceError, SourceErrorCode
from creativeflow.datasources.google import gcs
from creativeflow.datasources.google.gcs import API, SOURCE_TYPE, GcsConfig
from tests.datasources.google.fakes import FakeGoogle, google_error, key_file, short_context
from tests.datasources.servers import closed_port

PRIVATE = "cf-media"
PUBLIC = "cf_public.assets"
MANY = 1100


def parquet_bytes() -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": [1, 2, 3], "score": [0.5, 1.5, 2.5], "tag": ["a", "b", None]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


VIDEOS_CSV = b"title,views,published\nLaunch,1200,2024-01-02\nRecap,15,2024-04-01\n"
BIG_CSV = b"n,word\n" + b"".join(f"{n},word{n}\n".encode() for n in range(200))
OBJECTS: dict[str, dict[str, bytes]] = {
    PRIVATE: {
        "exports/": b"",
        "exports/videos.csv": VIDEOS_CSV,
        "exports/events.jsonl": b'{"event": "view", "n": 1}\n{"event": "like", "n": 2}\n',
        "exports/summary.json": json.dumps(
            [{"k": "a", "v": True}, {"k": "b", "v": False}]
        ).encode(),
        "exports/scores.parquet": parquet_bytes(),
        "exports/2024/jan.csv": b"a\n1\n",
        "exports/2024/feb.csv": b"a\n2\n",
        "exports/notes.txt": b"not a table",
        "exports/weird name's #1.csv": b"x,y\n1,2\n",
        "exports/big.csv": BIG_CSV,
        "exports/empty.csv": b"",
        "readme.md": b"# media",
        **{f"many/obj-{n:04d}.csv": b"a\n1\n" for n in range(MANY)},
    },
    PUBLIC: {"open/list.csv": b"name\nfree\n"},
}
BUCKETS = {
    PRIVATE: {"location": "EU", "storageClass": "STANDARD", "locationType": "multi-region"},
    PUBLIC: {"location": "US-CENTRAL1", "storageClass": "NEARLINE", "locationType": "region"},
}


def gcs_app(fake: FakeGoogle, ranges: list[str]) -> Starlette:
    def no_bucket() -> Response:
        return google_error(404, "The specified bucket does not exist.", "NOT_FOUND", "notFound")

    def allowed(request: Request, bucket: str, *, metadata: bool = False) -> Response | None:
        # Public buckets let anyone read objects (roles/storage.objectViewer for allUsers),
        # but not the bucket's metadata.
        anonymous = bucket == PUBLIC and not metadata
        return fake.refused(request, anonymous=anonymous)

    async def bucket_metadata(request: Request) -> Response:
        bucket = request.path_params["bucket"]
        refused = allowed(request, bucket, metadata=True)
        if refused is not None:
            return refused
        if bucket not in BUCKETS:
            return no_bucket()
        return JSONResponse(
            {
                "kind": "storage#bucket",
                "id": bucket,
                "name": bucket,
                "timeCreated": "2024-01-01T00:00:00.000Z",
                **BUCKETS[bucket],
            }
        )

    def resource(bucket: str, name: str) -> dict[str, Any]:
        kind = "text/csv" if name.endswith(".csv") else "application/octet-stream"
        return {
            "kind": "storage#object",
            "name": name,
            "bucket": bucket,
            "size": str(len(OBJECTS[bucket][name])),
            "contentType": kind,
            "updated": "2024-06-01T12:00:00.000Z",
        }

    async def list_objects(request: Request) -> Response:
        bucket = request.path_params["bucket"]
        refused = allowed(request, bucket)
        if refused is not None:
            return refused
        if bucket not in BUCKETS:
            return no_bucket()
        query = request.query_params
        prefix, delimiter = query.get("prefix", ""), query.get("delimiter")
        size = min(int(query.get("maxResults", "1000")), 1000)
        entries: list[tuple[str, bool]] = []  # (name, is a prefix)
        for name in sorted(OBJECTS[bucket]):
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix) :]
            if delimiter and delimiter in rest:
                folded = prefix + rest[: rest.index(delimiter) + 1]
                if (folded, True) not in entries:
                    entries.append((folded, True))
            else:
                entries.append((name, False))
        start = int(query.get("pageToken", "0"))
        page = entries[start : start + size]
        answer: dict[str, Any] = {"kind": "storage#objects"}
        items = [resource(bucket, name) for name, folded in page if not folded]
        prefixes = [name for name, folded in page if folded]
        if items:
            answer["items"] = items
        if prefixes:
            answer["prefixes"] = prefixes
        if start + size < len(entries):
            answer["nextPageToken"] = str(start + size)
        return JSONResponse(answer)

    async def get_object(request: Request) -> Response:
        bucket, name = request.path_params["bucket"], request.path_params["object"]
        refused = allowed(request, bucket)
        if refused is not None:
            return refused
        if bucket not in BUCKETS:
            return no_bucket()
        if name not in OBJECTS[bucket]:
            return google_error(404, f"No such object: {bucket}/{name}", "NOT_FOUND", "notFound")
        if request.query_params.get("alt") != "media":
            return JSONResponse(resource(bucket, name))
        data = OBJECTS[bucket][name]
        header = request.headers.get("range")
        if header is None:
            return Response(data, media_type="application/octet-stream")
        ranges.append(header)
        found = re.fullmatch(r"bytes=(\d+)-(\d+)", header)
        assert found is not None
        first, last = int(found.group(1)), int(found.group(2))
        if first >= len(data):
            return google_error(416, "The requested range cannot be satisfied.", "INVALID_ARGUMENT")
        part = data[first : last + 1]
        return Response(
            part,
            status_code=206,
            media_type="application/octet-stream",
            headers={"Content-Range": f"bytes {first}-{first + len(part) - 1}/{len(data)}"},
        )

    return Starlette(
        routes=[
            Route("/token", fake.token, methods=["POST"]),
            Route("/storage/v1/b/{bucket}", bucket_metadata),
            Route("/storage/v1/b/{bucket}/o", list_objects),
            Route("/storage/v1/b/{bucket}/o/{object:path}", get_object),
        ]
    )


@pytest.fixture(scope="module")
def fake() -> FakeGoogle:
    return FakeGoogle(scope=API.scope)


@pytest.fixture(scope="module")
def ranges() -> list[str]:
    return []


@pytest.fixture(scope="module")
def server(fake: FakeGoogle, ranges: list[str]) -> Iterator[str]:
    from tests.providers.fake_servers import serve_app

    with serve_app(gcs_app(fake, ranges)) as base_url:
        yield base_url


def config(base_url: str, **overrides: Any) -> GcsConfig:
    data: dict[str, Any] = {
        "type": "gcs",
        "bucket": PRIVATE,
        "auth": {"mode": "service_account", "service_account_key": key_file(f"{base_url}/token")},
        "api_base_url": base_url,
    }
    data.update(overrides)
    return GcsConfig.model_validate(data)


def public(base_url: str, **overrides: Any) -> GcsConfig:
    return config(base_url, bucket=PUBLIC, auth={"mode": "none"}, **overrides)


# -- validation ------------------------------------------------------------------------------


def test_a_good_config_validates() -> None:
    parsed = GcsConfig.model_validate(
        {"type": "gcs", "bucket": "gs://my_bucket.example/", "auth": {"mode": "none"}}
    )
    assert parsed.bucket == "my_bucket.example"
    assert parsed.prefix is None
    assert parsed.api_base_url == "https://storage.googleapis.com"
    assert parsed.hosts() == [("storage.googleapis.com", 443)]
    assert SOURCE_TYPE.drivers == ()
    assert SOURCE_TYPE.driver_error() is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"bucket": "ab"}, "bucket"),
        ({"bucket": "Media"}, "bucket"),
        ({"bucket": "-media"}, "bucket"),
        ({"bucket": "192.168.1.1"}, "bucket"),
        ({"bucket": "google-media"}, "bucket"),
        ({"bucket": "a" * 64}, "bucket"),
        ({"prefix": "/exports"}, "prefix"),
        ({"auth": {"mode": "api_key", "api_key": "k"}}, "auth"),
        ({"auth": {"mode": "service_account"}}, "auth"),
        ({"auth": {"mode": "service_account", "service_account_key": "{"}}, "auth"),
        ({"api_base_url": "gs://cf-media"}, "api_base_url"),
    ],
)
def test_mistakes_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        config("http://127.0.0.1:1", **overrides)
    locations = [".".join(str(part) for part in error["loc"]) for error in raised.value.errors()]
    assert any(location.startswith(field) for location in locations), locations


# -- check -----------------------------------------------------------------------------------


async def test_check_reads_the_bucket(
    server: str, fake: FakeGoogle, context: ConnectContext
) -> None:
    result = await SOURCE_TYPE.connector.check(config(server), context)
    assert result.server_version == "Cloud Storage JSON API v1"
    assert result.details == {
        "bucket": PRIVATE,
        "location": "EU",
        "location_type": "multi-region",
        "storage_class": "STANDARD",
        "created": "2024-01-01T00:00:00.000Z",
    }
    assert fake.assertions[-1]["scope"] == "https://www.googleapis.com/auth/devstorage.read_only"


async def test_check_of_a_public_bucket_lists_an_object(
    server: str, context: ConnectContext
) -> None:
    result = await SOURCE_TYPE.connector.check(public(server), context)
    assert result.details == {"bucket": PUBLIC, "metadata": "not readable"}


async def test_a_private_bucket_without_credentials_is_denied(
    server: str, context: ConnectContext
) -> None:
    with pytest.raises(SourceError) as raised:
        await SOURCE_TYPE.connector.check(config(server, auth={"mode": "none"}), context)
    assert raised.value.code == SourceErrorCode.PERMISSION_DENIED
    assert "service_account" in raised.value.message


# -- discover --------------------------------------------------------------------------------


async def test_discover_lists_prefixes_and_files(server: str, context: ConnectContext) -> None:
    discovery = await SOURCE_TYPE.connector.discover(config(server, prefix="exports/"), context)
    assert not discovery.truncated
    kinds = {o.name: o.kind for o in discovery.objects}
    assert kinds == {
        "exports/2024/": "prefix",
        "exports/big.csv": "file",
        "exports/empty.csv": "file",
        "exports/events.jsonl": "file",
        "exports/notes.txt": "file",
        "exports/scores.parquet": "file",
        "exports/summary.json": "file",
        "exports/videos.csv": "file",
        "exports/weird name's #1.csv": "file",
    }
    videos = next(o for o in discovery.objects if o.name == "exports/videos.csv")
    assert videos.details == {
        "size": len(VIDEOS_CSV),
        "format": "csv",
        "content_type": "text/csv",
        "updated": "2024-06-01T12:00:00.000Z",
    }
    notes = next(o for o in discovery.objects if o.name == "exports/notes.txt")
    assert notes.details["format"] is None


async def test_discover_of_the_whole_bucket(server: str, context: ConnectContext) -> None:
    discovery = await SOURCE_TYPE.connector.discover(config(server), context)
    assert [(o.name, o.kind) for o in discovery.objects] == [
        ("exports/", "prefix"),
        ("many/", "prefix"),
        ("readme.md", "file"),
    ]


async def test_discover_is_capped(server: str, context: ConnectContext) -> None:
    discovery = await SOURCE_TYPE.connector.discover(config(server, prefix="many/"), context)
    assert discovery.truncated
    assert len(discovery.objects) == base.MAX_DISCOVERED
    assert discovery.objects[-1].name == f"many/obj-{base.MAX_DISCOVERED - 1:04d}.csv"


# -- preview ---------------------------------------------------------------------------------


async def test_preview_of_a_csv_reads_a_range(
    server: str, context: ConnectContext, ranges: list[str]
) -> None:
    preview = await SOURCE_TYPE.connector.preview(config(server), context, "exports/videos.csv", 10)
    assert [(c.name, c.type) for c in preview.columns] == [
        ("title", "string"),
        ("views", "integer"),
        ("published", "date"),
    ]
    assert preview.rows == [
        {"title": "Launch", "views": 1200, "published": "2024-01-02"},
        {"title": "Recap", "views": 15, "published": "2024-04-01"},
    ]
    assert not preview.truncated
    assert ranges[-1] == f"bytes=0-{gcs.RANGE_BYTES - 1}"


async def test_a_cut_range_keeps_whole_lines(
    server: str, context: ConnectContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gcs, "RANGE_BYTES", 100)
    preview = await SOURCE_TYPE.connector.preview(config(server), context, "exports/big.csv", 50)
    assert preview.truncated
    last = preview.rows[-1]
    assert last["word"] == f"word{last['n']}"
    assert len(preview.rows) < 50


@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("exports/events.jsonl", {"event": "view", "n": 1}),
        ("exports/summary.json", {"k": "a", "v": True}),
        ("exports/scores.parquet", {"id": 1, "score": 0.5, "tag": "a"}),
        ("exports/weird name's #1.csv", {"x": 1, "y": 2}),
    ],
)
async def test_preview_of_other_formats(
    server: str, context: ConnectContext, name: str, first: dict[str, Any]
) -> None:
    preview = await SOURCE_TYPE.connector.preview(config(server), context, name, 10)
    assert preview.rows[0] == first


async def test_preview_of_a_public_object(server: str, context: ConnectContext) -> None:
    preview = await SOURCE_TYPE.connector.preview(public(server), context, "open/list.csv", 10)
    assert preview.rows == [{"name": "free"}]


async def test_preview_of_an_empty_object(server: str, context: ConnectContext) -> None:
    preview = await SOURCE_TYPE.connector.preview(config(server), context, "exports/empty.csv", 10)
    assert preview.rows == []


async def test_an_object_too_large_to_read_whole(
    server: str, context: ConnectContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gcs, "WHOLE_BYTES", 16)
    with pytest.raises(SourceError) as raised:
        await SOURCE_TYPE.connector.preview(config(server), context, "exports/summary.json", 10)
    assert raised.value.code == SourceErrorCode.INVALID_OBJECT


@pytest.mark.parametrize(
    ("name", "prefix", "code"),
    [
        ("exports/missing.csv", None, SourceErrorCode.NOT_FOUND),
        ("exports/notes.txt", None, SourceErrorCode.INVALID_OBJECT),
        ("exports/2024/", None, SourceErrorCode.INVALID_OBJECT),
        ("readme.csv\n", None, SourceErrorCode.INVALID_OBJECT),
        ("a\nb.csv", None, SourceErrorCode.INVALID_OBJECT),
        ("readme.md", "exports/", SourceErrorCode.INVALID_OBJECT),
    ],
)
async def test_bad_objects(
    server: str, context: ConnectContext, name: str, prefix: str | None, code: SourceErrorCode
) -> None:
    with pytest.raises(SourceError) as raised:
        await SOURCE_TYPE.connector.preview(config(server, prefix=prefix), context, name, 10)
    assert raised.value.code == code


# -- failures --------------------------------------------------------------------------------


async def test_a_key_the_account_does_not_hold_fails_auth(
    server: str, context: ConnectContext
) -> None:
    wrong = key_file(f"{server}/token", key_number=2)
    auth = {"mode": "service_account", "service_account_key": wrong}
    with pytest.raises(SourceError) as raised:
        await SOURCE_TYPE.connector.check(config(server, auth=auth), context)
    assert raised.value.code == SourceErrorCode.AUTH_FAILED
    assert "PRIVATE KEY" not in raised.value.message
    assert json.loads(wrong)["private_key_id"] not in raised.value.message


async def test_an_unknown_bucket_is_not_found(server: str, context: ConnectContext) -> None:
    with pytest.raises(SourceError) as raised:
        await SOURCE_TYPE.connector.check(config(server, bucket="cf-missing"), context)
    assert raised.value.code == SourceErrorCode.NOT_FOUND
    assert "cf-missing" in raised.value.message


async def test_a_closed_port_refuses(context: ConnectContext) -> None:
    with pytest.raises(SourceError) as raised:
        await SOURCE_TYPE.connector.check(public(f"http://127.0.0.1:{closed_port()}"), context)
    assert raised.value.code == SourceErrorCode.CONNECTION_REFUSED


@pytest.mark.parametrize("silent", ["api", "token endpoint"])
async def test_a_silent_port_times_out(
    silent_port: int, server: str, context: ConnectContext, silent: str
) -> None:
    quiet = f"http://127.0.0.1:{silent_port}"
    if silent == "api":
        source = public(quiet)
    else:
        auth = {"mode": "service_account", "service_account_key": key_file(f"{quiet}/token")}
        source = config(server, auth=auth)
    started = time.monotonic()
    with pytest.raises(SourceError) as raised:
        await SOURCE_TYPE.connector.check(source, short_context(context))
    assert raised.value.code == SourceErrorCode.TIMEOUT
    assert time.monotonic() - started < 2.5


async def test_loopback_is_refused_when_guarded(
    server: str, guarded_context: ConnectContext
) -> None:
    with pytest.raises(SourceError) as raised:
        await SOURCE_TYPE.connector.check(config(server), guarded_context)
    assert raised.value.code == SourceErrorCode.HOST_REFUSED
