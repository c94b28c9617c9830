"""A YouTube channel over the YouTube Data API v3: its title and statistics, its uploads, and a
table of its videos (title, publication, duration and counts)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from creativeflow.datasources.base import (
    MAX_DISCOVERED,
    CheckResult,
    Column,
    ConnectContext,
    DiscoveredObject,
    Discovery,
    Preview,
    SourceCategory,
    SourceConfig,
    SourceError,
    SourceErrorCode,
    SourceType,
)
from creativeflow.datasources.fields import HttpUrl, url_host_port
from creativeflow.datasources.google.auth import ApiKeyAuth, ServiceAccountAuth, auth_hosts
from creativeflow.datasources.google.client import GoogleApi, GoogleClient
from creativeflow.datasources.rows import jsonable

YOUTUBE_BASE_URL = "https://www.googleapis.com/youtube/v3"
API = GoogleApi(
    name="the YouTube Data API",
    version="YouTube Data API v3",
    scope="https://www.googleapis.com/auth/youtube.readonly",
)
PAGE_SIZE = 50  # the most playlistItems and videos answer per request
MAX_DISCOVERY_PAGES = 4  # discovery lists the latest 200 uploads
VIDEOS_TABLE = "videos"

_CHANNEL_ID = re.compile(r"^UC[A-Za-z0-9_-]{22}$")
_HANDLE = re.compile(r"^@[A-Za-z0-9._-]{3,30}$")
_VIDEO_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")

VIDEO_COLUMNS = [
    Column("video_id", "string", nullable=False),
    Column("title", "string", nullable=False),
    Column("published_at", "datetime", nullable=True),
    # Seconds (the API says ISO 8601, `PT4M13S`).
    Column("duration", "integer", nullable=True),
    Column("view_count", "integer", nullable=True),
    Column("like_count", "integer", nullable=True),
    Column("comment_count", "integer", nullable=True),
]

YoutubeAuth = Annotated[
    ApiKeyAuth | ServiceAccountAuth,
    Field(
        discriminator="mode",
        description="An API key (public channel data), or a service-account key",
    ),
]


class YoutubeConfig(SourceConfig):
    type: Literal["youtube"] = Field(description="A YouTube channel")
    auth: YoutubeAuth
    channel_id: str | None = Field(
        default=None, description="The channel's id (UC followed by 22 characters)"
    )
    handle: str | None = Field(
        default=None, description="The channel's handle (@name), instead of its id"
    )
    api_base_url: HttpUrl = Field(
        default=YOUTUBE_BASE_URL,
        description="The YouTube Data API endpoint (an emulator's or a proxy's URL in its place)",
    )

    @field_validator("channel_id")
    @classmethod
    def _channel_id(cls, value: str | None) -> str | None:
        if value and not _CHANNEL_ID.match(value):
            raise ValueError(
                "must be a channel id: UC followed by 22 letters, digits, '-' or '_' "
                "(a handle goes in `handle`)"
            )
        return value or None

    @field_validator("handle")
    @classmethod
    def _handle(cls, value: str | None) -> str | None:
        if not value:
            return None
        handle = value if value.startswith("@") else f"@{value}"
        if not _HANDLE.match(handle):
            raise ValueError("must be a handle: @ and 3-30 letters, digits, '.', '-' or '_'")
        return handle

    @model_validator(mode="after")
    def _one_channel(self) -> YoutubeConfig:
        if self.channel_id is None and self.handle is None:
            raise ValueError("name the channel: set `channel_id` or `handle`")
        if self.channel_id is not None and self.handle is not None:
            raise ValueError("set `channel_id` or `handle`, not both")
        return self

    def hosts(self) -> list[tuple[str, int]]:
        return [url_host_port(self.api_base_url), *auth_hosts(self.auth)]

    @property
    def channel(self) -> str:
        return self.channel_id or self.handle or ""


def _count(statistics: Any, name: str) -> int | None:
    try:
        return int(statistics[name])
    except (KeyError, TypeError, ValueError):
        return None


def _published(text: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None


def duration_seconds(text: Any) -> int | None:
    """An ISO 8601 duration as YouTube gives it (`PT1H2M3S`, `P1DT2H`) in seconds."""
    found = _DURATION.match(text) if isinstance(text, str) else None
    if found is None:
        return None
    days, hours, minutes, seconds = (int(part or 0) for part in found.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def video_row(video: dict[str, Any]) -> dict[str, Any]:
    snippet = video.get("snippet") or {}
    statistics = video.get("statistics") or {}
    details = video.get("contentDetails") or {}
    return jsonable(
        {
            "video_id": video.get("id"),
            "title": snippet.get("title"),
            "published_at": _published(snippet.get("publishedAt")),
            "duration": duration_seconds(details.get("duration")),
            "view_count": _count(statistics, "viewCount"),
            "like_count": _count(statistics, "likeCount"),
            "comment_count": _count(statistics, "commentCount"),
        }
    )


def _items(answer: Any) -> list[dict[str, Any]]:
    if not isinstance(answer, dict):
        raise SourceError(SourceErrorCode.PROTOCOL_ERROR, "the answer is not a JSON object")
    # The API leaves `items` out when nothing matched.
    items = answer.get("items") or []
    return [item for item in items if isinstance(item, dict)]


def _video_id(item: dict[str, Any]) -> str | None:
    """A playlist item's video id."""
    snippet = item.get("snippet") or {}
    video_id = (item.get("contentDetails") or {}).get("videoId") or (
        snippet.get("resourceId") or {}
    ).get("videoId")
    return video_id if isinstance(video_id, str) and _VIDEO_ID.match(video_id) else None


class YoutubeConnector:
    def _client(self, config: YoutubeConfig, context: ConnectContext) -> GoogleClient:
        return GoogleClient(context, config.api_base_url, config.auth, API)

    async def _channel(self, client: GoogleClient, config: YoutubeConfig) -> dict[str, Any]:
        selector = {"id": config.channel_id} if config.channel_id else {"forHandle": config.channel}
        missing = f"there is no channel {config.channel}"
        answer = await client.json(
            "/channels",
            {"part": "snippet,statistics,contentDetails", **selector},
            missing=missing,
        )
        items = _items(answer)
        if not items:
            raise SourceError(SourceErrorCode.NOT_FOUND, missing)
        return items[0]

    async def _uploads(
        self, client: GoogleClient, channel: dict[str, Any], wanted: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """The channel's latest `wanted` uploads (playlist items, newest first), and whether
        there are more."""
        playlists = (channel.get("contentDetails") or {}).get("relatedPlaylists") or {}
        uploads = playlists.get("uploads")
        if not isinstance(uploads, str) or not uploads:
            return [], False
        found: list[dict[str, Any]] = []
        page_token: str | None = None
        while len(found) < wanted:
            params: dict[str, str | int] = {
                "part": "snippet,contentDetails",
                "playlistId": uploads,
                "maxResults": min(PAGE_SIZE, wanted - len(found)),
                **({"pageToken": page_token} if page_token else {}),
            }
            try:
                answer = await client.json("/playlistItems", params, missing="no uploads")
            except SourceError as exc:
                # A channel that never uploaded has no uploads playlist to read.
                if exc.code == SourceErrorCode.NOT_FOUND and not found:
                    return [], False
                raise
            found.extend(_items(answer))
            page_token = answer.get("nextPageToken") or None
            if page_token is None:
                return found[:wanted], len(found) > wanted
        return found[:wanted], page_token is not None or len(found) > wanted

    async def _videos(self, client: GoogleClient, ids: list[str]) -> list[dict[str, Any]]:
        videos: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), PAGE_SIZE):
            answer = await client.json(
                "/videos",
                {
                    "part": "snippet,statistics,contentDetails",
                    "id": ",".join(ids[start : start + PAGE_SIZE]),
                    "maxResults": PAGE_SIZE,
                },
                missing="no videos",
            )
            videos.update((str(item.get("id")), item) for item in _items(answer))
        # In the uploads' order; a video removed in between is left out.
        return [videos[video_id] for video_id in ids if video_id in videos]

    async def check(self, config: YoutubeConfig, context: ConnectContext) -> CheckResult:
        async with self._client(config, context) as client:
            channel = await self._channel(client, config)
        snippet = channel.get("snippet") or {}
        statistics = channel.get("statistics") or {}
        hidden = bool(statistics.get("hiddenSubscriberCount"))
        return CheckResult(
            server_version=API.version,
            details={
                "channel_id": channel.get("id"),
                "title": snippet.get("title"),
                "handle": snippet.get("customUrl"),
                "subscriber_count": None if hidden else _count(statistics, "subscriberCount"),
                "video_count": _count(statistics, "videoCount"),
                "view_count": _count(statistics, "viewCount"),
            },
        )

    async def discover(self, config: YoutubeConfig, context: ConnectContext) -> Discovery:
        wanted = min(MAX_DISCOVERY_PAGES * PAGE_SIZE, MAX_DISCOVERED - 1)
        async with self._client(config, context) as client:
            channel = await self._channel(client, config)
            uploads, more = await self._uploads(client, channel, wanted)
        statistics = channel.get("statistics") or {}
        objects = [
            DiscoveredObject(
                name=VIDEOS_TABLE,
                kind="table",
                columns=list(VIDEO_COLUMNS),
                details={
                    "channel_id": channel.get("id"),
                    "title": (channel.get("snippet") or {}).get("title"),
                    "video_count": _count(statistics, "videoCount"),
                },
            )
        ]
        for item in uploads:
            snippet = item.get("snippet") or {}
            details = item.get("contentDetails") or {}
            video_id = _video_id(item)
            if video_id is None:
                continue
            published = details.get("videoPublishedAt") or snippet.get("publishedAt")
            objects.append(
                DiscoveredObject(
                    name=video_id,
                    kind="video",
                    details={"title": snippet.get("title"), "published_at": published},
                )
            )
        return Discovery(objects=objects, truncated=more)

    async def preview(
        self, config: YoutubeConfig, context: ConnectContext, object_name: str, limit: int
    ) -> Preview:
        if object_name != VIDEOS_TABLE and not _VIDEO_ID.match(object_name):
            raise SourceError(
                SourceErrorCode.INVALID_OBJECT,
                f"is neither {VIDEOS_TABLE!r} nor a video id (11 letters, digits, '-' or '_')",
            )
        async with self._client(config, context) as client:
            channel = await self._channel(client, config)
            if object_name == VIDEOS_TABLE:
                uploads, more = await self._uploads(client, channel, limit)
                ids = [video_id for item in uploads if (video_id := _video_id(item))]
                videos = await self._videos(client, ids)
            else:
                more = False
                videos = await self._videos(client, [object_name])
                if not videos or (videos[0].get("snippet") or {}).get("channelId") != channel.get(
                    "id"
                ):
                    raise SourceError(
                        SourceErrorCode.NOT_FOUND,
                        f"the channel {config.channel} has no video {object_name}",
                    )
        return Preview(
            columns=list(VIDEO_COLUMNS), rows=[video_row(video) for video in videos], truncated=more
        )


SOURCE_TYPE = SourceType(
    name="youtube",
    display_name="YouTube",
    category=SourceCategory.SAAS,
    config_model=YoutubeConfig,
    connector=YoutubeConnector(),
    description="A YouTube channel: its statistics, its uploads, and a table of its videos "
    "with their views, likes and comments.",
)
