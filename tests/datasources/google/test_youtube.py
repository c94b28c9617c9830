from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from creativeflow.datasources.base import ConnectContext, SourceError, SourceErrorCode
from creativeflow.datasources.google.youtube import (
    API,
    SOURCE_TYPE,
    YoutubeConfig,
    duration_seconds,
)
from tests.datasources.google.fakes import (
    API_KEY,
    WRONG_API_KEY,
    FakeGoogle,
    google_error,
    key_file,
    short_context,
)
from tests.datasources.servers import closed_port

CHANNEL = "UCtestchannel0000000000A"
EMPTY_CHANNEL = "UCemptychannel000000000B"
OTHER_CHANNEL = "UCotherchannel000000000C"
VIDEO_COUNT = 120


def video_id(number: int) -> str:
    return f"vid{number:08d}"


@dataclass
class Video:
    id: str
    channel: str
    title: str
    published: str
    duration: str
    views: int
    likes: int | None

    def resource(self, parts: set[str]) -> dict[str, Any]:
        item: dict[str, Any] = {"kind": "youtube#video", "etag": "e", "id": self.id}
        if "snippet" in parts:
            item["snippet"] = {
                "publishedAt": self.published,
                "channelId": self.channel,
                "title": self.title,
                "description": "",
            }
        if "statistics" in parts:
            statistics = {"viewCount": str(self.views), "favoriteCount": "0", "commentCount": "3"}
            if self.likes is not None:
                statistics["likeCount"] = str(self.likes)
            item["statistics"] = statistics
        if "contentDetails" in parts:
            item["contentDetails"] = {"duration": self.duration, "definition": "hd"}
        return item


# Newest first, as the uploads playlist lists them.
UPLOADS = [
    Video(
        id=video_id(n),
        channel=CHANNEL,
        title=f"Episode {VIDEO_COUNT - n}",
        published=f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}T10:00:{n % 60:02d}Z",
        duration=f"PT{n % 3}H{n % 60}M{n % 50}S",
        views=1000 + n,
        # Likes hidden on every tenth video.
        likes=None if n % 10 == 0 else n * 2,
    )
    for n in range(VIDEO_COUNT)
]
FOREIGN = Video("foreignvid1", OTHER_CHANNEL, "Not ours", "2023-05-01T00:00:00Z", "PT1M", 5, 1)
VIDEOS = {video.id: video for video in [*UPLOADS, FOREIGN]}


def channel_resource(channel_id: str, parts: set[str]) -> dict[str, Any]:
    item: dict[str, Any] = {"kind": "youtube#channel", "etag": "e", "id": channel_id}
    if "snippet" in parts:
        item["snippet"] = {
            "title": "CreativeFlow Studio" if channel_id == CHANNEL else "Quiet",
            "customUrl": "@creativeflow" if channel_id == CHANNEL else "@quiet",
            "publishedAt": "2020-01-01T00:00:00Z",
        }
    if "statistics" in parts:
        item["statistics"] = {
            "viewCount": "987654",
            "subscriberCount": "4321",
            "hiddenSubscriberCount": False,
            "videoCount": str(VIDEO_COUNT if channel_id == CHANNEL else 0),
        }
    if "contentDetails" in parts:
        item["contentDetails"] = {
            "relatedPlaylists": {"likes": "", "uploads": "UU" + channel_id[2:]}
        }
    return item


HANDLES = {"@creativeflow": CHANNEL, "@quiet": EMPTY_CHANNEL}


def youtube_app(fake: FakeGoogle) -> Starlette:
    def listing(kind: str, items: list[dict[str, Any]], **extra: Any) -> JSONResponse:
        return JSONResponse(
            {
                "kind": f"youtube#{kind}ListResponse",
                "etag": "e",
                "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)},
                **({"items": items} if items else {}),
                **extra,
            }
        )

    async def channels(request: Request) -> Response:
        refused = fake.refused(request)
        if refused is not None:
            return refused
        query = request.query_params
        parts = set(query.get("part", "").split(","))
        if query.get("forHandle") == "@quota":
            return google_error(
                403,
                "The request cannot be completed because you have exceeded your quota.",
                "PERMISSION_DENIED",
                "quotaExceeded",
            )
        channel_id = query.get("id") or HANDLES.get(query.get("forHandle", ""))
        if channel_id not in (CHANNEL, EMPTY_CHANNEL, OTHER_CHANNEL):
            # The API answers an unknown channel with an empty list, not 404.
            return listing("channel", [])
        return listing("channel", [channel_resource(channel_id, parts)])

    async def playlist_items(request: Request) -> Response:
        refused = fake.refused(request)
        if refused is not None:
            return refused
        query = request.query_params
        if query.get("playlistId") != "UU" + CHANNEL[2:]:
            return google_error(
                404,
                "The playlist identified with the request's playlistId parameter cannot be found.",
                "NOT_FOUND",
                "playlistNotFound",
            )
        size = int(query.get("maxResults", "5"))
        assert 0 <= size <= 50
        start = int(query.get("pageToken", "0"))
        page = UPLOADS[start : start + size]
        items = [
            {
                "kind": "youtube#playlistItem",
                "id": f"item-{video.id}",
                "snippet": {
                    "publishedAt": video.published,
                    "title": video.title,
                    "resourceId": {"kind": "youtube#video", "videoId": video.id},
                },
                "contentDetails": {"videoId": video.id, "videoPublishedAt": video.published},
            }
            for video in page
        ]
        more = start + size < len(UPLOADS)
        return listing(
            "playlistItem", items, **({"nextPageToken": str(start + size)} if more else {})
        )

    async def videos(request: Request) -> Response:
        refused = fake.refused(request)
        if refused is not None:
            return refused
        ids = [value for value in request.query_params.get("id", "").split(",") if value]
        assert len(ids) <= 50
        parts = set(request.query_params.get("part", "").split(","))
        return listing("video", [VIDEOS[i].resource(parts) for i in ids if i in VIDEOS])

    return Starlette(
        routes=[
            Route("/token", fake.token, methods=["POST"]),
            Route("/youtube/v3/channels", channels),
            Route("/youtube/v3/playlistItems", playlist_items),
            Route("/youtube/v3/videos", videos),
        ]
    )


@pytest.fixture(scope="module")
def fake() -> FakeGoogle:
    return FakeGoogle(scope=API.scope)


@pytest.fixture(scope="module")
def server(fake: FakeGoogle) -> Iterator[str]:
    from tests.providers.fake_servers import serve_app

    with serve_app(youtube_app(fake)) as base_url:
        yield base_url


def config(base_url: str, **overrides: Any) -> YoutubeConfig:
    data: dict[str, Any] = {
        "type": "youtube",
        "channel_id": CHANNEL,
        "auth": {"mode": "api_key", "api_key": API_KEY},
        "api_base_url": f"{base_url}/youtube/v3",
    }
    data.update(overrides)
    return YoutubeConfig.model_validate({k: v for k, v in data.items() if v is not None})


# -- validation ------------------------------------------------------------------------------


def test_a_good_config_validates() -> None:
    parsed = YoutubeConfig.model_validate(
        {"type": "youtube", "handle": "creativeflow", "auth": {"mode": "api_key", "api_key": "k"}}
    )
    assert parsed.handle == "@creativeflow"
    assert parsed.api_base_url == "https://www.googleapis.com/youtube/v3"
    assert parsed.hosts() == [("www.googleapis.com", 443)]
    assert SOURCE_TYPE.driver_error() is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"channel_id": "UCshort"}, "channel_id"),
        ({"channel_id": "XXtestchannel0000000000A"}, "channel_id"),
        ({"channel_id": None, "handle": "@a"}, "handle"),
        ({"channel_id": None, "handle": "@has space"}, "handle"),
        ({"auth": {"mode": "api_key"}}, "auth.api_key"),
        ({"auth": {"mode": "oauth"}}, "auth"),
        ({"auth": {"mode": "service_account", "service_account_key": "{}"}}, "auth"),
        ({"api_base_url": "ftp://example.com/youtube/v3"}, "api_base_url"),
        ({"api_base_url": "https://user:pw@example.com/"}, "api_base_url"),
    ],
)
def test_mistakes_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        config("http://127.0.0.1:1", **overrides)
    locations = [".".join(str(part) for part in error["loc"]) for error in raised.value.errors()]
    assert any(location.startswith(field) for location in locations), locations


def test_channel_id_or_handle_and_not_both() -> None:
    with pytest.raises(ValidationError, match="channel_id` or `handle"):
        config("http://127.0.0.1:1", channel_id=None)
    with pytest.raises(ValidationError, match="not both"):
        config("http://127.0.0.1:1", handle="@creativeflow")


def test_a_bad_key_file_is_named_without_quoting_it() -> None:
    wrong = key_file("https://oauth2.googleapis.com/token", type="authorized_user")
    with pytest.raises(ValidationError) as raised:
        config("http://127.0.0.1:1", auth={"mode": "service_account", "service_account_key": wrong})
    error = raised.value.errors()[0]
    assert error["loc"][-1] == "service_account_key"
    assert "service_account" in error["msg"]
    assert "PRIVATE KEY" not in error["msg"]


def test_durations_read_as_seconds() -> None:
    assert duration_seconds("PT4M13S") == 253
    assert duration_seconds("PT1H") == 3600
    assert duration_seconds("P1DT2H3M4S") == 93784
    assert duration_seconds("P0D") == 0
    assert duration_seconds("soon") is None


# -- check -----------------------------------------------------------------------------------


async def test_check_with_an_api_key(server: str, context: ConnectContext) -> None:
    result = await SOURCE_TYPE.connector.check(config(server), context)
    assert result.server_version == "YouTube Data API v3"
    assert result.details["title"] == "CreativeFlow Studio"
    assert result.details["subscriber_count"] == 4321
    assert result.details["video_count"] == VIDEO_COUNT


async def test_check_by_handle_with_a_service_account(
    server: str, fake: FakeGoogle, context: ConnectContext
) -> None:
    auth = {"mode": "service_account", "service_account_key": key_file(f"{server}/token")}
    result = await SOURCE_TYPE.connector.check(
        config(server, channel_id=None, handle="@creativeflow", auth=auth), context
    )
    assert result.details["channel_id"] == CHANNEL
    assert fake.assertions[-1]["scope"] == "https://www.googleapis.com/auth/youtube.readonly"


# -- discover and preview --------------------------------------------------------------------


async def test_discover_lists_the_uploads(server: str, context: ConnectContext) -> None:
    discovery = await SOURCE_TYPE.connector.discover(config(server), context)
    table, *videos = discovery.objects
    assert (table.name, table.kind) == ("videos", "table")
    assert [c.name for c in table.columns or []][:3] == ["video_id", "title", "published_at"]
    assert len(videos) == VIDEO_COUNT
    assert not discovery.truncated
    assert {video.kind for video in videos} == {"video"}
    assert videos[0].name == video_id(0)
    assert videos[0].details == {"title": "Episode 120", "published_at": UPLOADS[0].published}


async def test_a_channel_without_uploads_has_an_empty_table(
    server: str, context: ConnectContext
) -> None:
    discovery = await SOURCE_TYPE.connector.discover(
        config(server, channel_id=EMPTY_CHANNEL), context
    )
    assert [o.name for o in discovery.objects] == ["videos"]
    preview = await SOURCE_TYPE.connector.preview(
        config(server, channel_id=EMPTY_CHANNEL), context, "videos", 10
    )
    assert preview.rows == []


async def test_preview_of_the_videos_table(server: str, context: ConnectContext) -> None:
    preview = await SOURCE_TYPE.connector.preview(config(server), context, "videos", 60)
    assert preview.truncated
    assert len(preview.rows) == 60
    types = {column.name: column.type for column in preview.columns}
    assert types == {
        "video_id": "string",
        "title": "string",
        "published_at": "datetime",
        "duration": "integer",
        "view_count": "integer",
        "like_count": "integer",
        "comment_count": "integer",
    }
    first, second = preview.rows[0], preview.rows[1]
    assert first == {
        "video_id": video_id(0),
        "title": "Episode 120",
        "published_at": "2024-01-01T10:00:00+00:00",
        "duration": 0,
        "view_count": 1000,
        "like_count": None,
        "comment_count": 3,
    }
    assert second["duration"] == 3600 + 60 + 1
    assert [row["video_id"] for row in preview.rows] == [video_id(n) for n in range(60)]


async def test_preview_of_every_video_is_not_truncated(
    server: str, context: ConnectContext
) -> None:
    preview = await SOURCE_TYPE.connector.preview(config(server), context, "videos", 1000)
    assert len(preview.rows) == VIDEO_COUNT
    assert not preview.truncated


async def test_preview_of_one_video(server: str, context: ConnectContext) -> None:
    preview = await SOURCE_TYPE.connector.preview(config(server), context, video_id(7), 10)
    assert preview.rows == [
        {
            "video_id": video_id(7),
            "title": "Episode 113",
            "published_at": "2024-08-08T10:00:07+00:00",
            "duration": 3600 + 7 * 60 + 7,
            "view_count": 1007,
            "like_count": 14,
            "comment_count": 3,
        }
    ]


@pytest.mark.parametrize("name", ["foreignvid1", "missingvid1"])
async def test_a_video_of_another_channel_is_not_found(
    server: str, context: ConnectContext, name: str
) -> None:
    with pytest.raises(SourceError) as raised:
        await SOURCE_TYPE.connector.preview(config(server), context, name, 10)
    assert raised.value.code == SourceErrorCode.NOT_FOUND


async def test_a_malformed_object_is_invalid(server: str, context: ConnectContext) -> None:
    with pytest.raises(SourceError) as raised:
        await SOURCE_TYPE.connector.preview(config(server), context, "../etc&id=x", 10)
    assert raised.value.code == SourceErrorCode.INVALID_OBJECT


# -- failures --------------------------------------------------------------------------------


async def test_a_wrong_api_key_fails_auth_without_showing_it(
    server: str, context: ConnectContext
) -> None:
    auth = {"mode": "api_key", "api_key": WRONG_API_KEY}
    with pytest.raises(SourceError) as raised:
        await SOURCE_TYPE.connector.check(config(server, auth=auth), context)
    assert raised.value.code == SourceErrorCode.AUTH_FAILED
    assert WRONG_API_KEY not in raised.value.message
    assert "API key" in raised.value.message


async def test_a_key_the_account_does_not_hold_fails_auth(
    server: str, context: ConnectContext
) -> None:
    wrong = key_file(f"{server}/token", key_number=2)
    auth = {"mode": "service_account", "service_account_key": wrong}
    with pytest.raises(SourceError) as raised:
        await SOURCE_TYPE.connector.check(config(server, auth=auth), context)
    assert raised.value.code == SourceErrorCode.AUTH_FAILED
    assert "Invalid JWT Signature" in raised.value.message
    assert "PRIVATE KEY" not in raised.value.message


async def test_an_unknown_channel_is_not_found(server: str, context: ConnectContext) -> None:
    with pytest.raises(SourceError) as raised:
        await SOURCE_TYPE.connector.check(
            config(server, channel_id=None, handle="@nobody-here"), context
        )
    assert raised.value.code == SourceErrorCode.NOT_FOUND
    assert "@nobody-here" in raised.value.message


async def test_an_exhausted_quota_says_so(server: str, context: ConnectContext) -> None:
    with pytest.raises(SourceError) as raised:
        await SOURCE_TYPE.connector.check(config(server, channel_id=None, handle="@quota"), context)
    assert raised.value.code == SourceErrorCode.PROTOCOL_ERROR
    assert "quota" in raised.value.message


async def test_a_closed_port_refuses(context: ConnectContext) -> None:
    with pytest.raises(SourceError) as raised:
        await SOURCE_TYPE.connector.check(config(f"http://127.0.0.1:{closed_port()}"), context)
    assert raised.value.code == SourceErrorCode.CONNECTION_REFUSED
    assert API_KEY not in raised.value.message


async def test_a_silent_port_times_out(silent_port: int, context: ConnectContext) -> None:
    started = time.monotonic()
    with pytest.raises(SourceError) as raised:
        await SOURCE_TYPE.connector.check(
            config(f"http://127.0.0.1:{silent_port}"), short_context(context)
        )
    assert raised.value.code == SourceErrorCode.TIMEOUT
    assert time.monotonic() - started < 2.5


async def test_loopback_is_refused_when_guarded(
    server: str, guarded_context: ConnectContext
) -> None:
    with pytest.raises(SourceError) as raised:
        await SOURCE_TYPE.connector.check(config(server), guarded_context)
    assert raised.value.code == SourceErrorCode.HOST_REFUSED
