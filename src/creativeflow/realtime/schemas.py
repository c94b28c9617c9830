"""The WebSocket protocol's client messages and close codes (server messages: `models.py`)."""

from __future__ import annotations

import uuid
from enum import IntEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class CloseCode(IntEnum):
    """Why the server closed a socket; the close frame's reason says more."""

    # A client message that is not JSON, not a known type, or has a bad field; a bad `since`
    # or `resource_id` query parameter; too many subscriptions; a second `auth`.
    BAD_MESSAGE = 4400
    # No credential, or a bad, expired or revoked access token or API key.
    UNAUTHENTICATED = 4401
    # The subject does not exist or the caller may not read it (the two are not told apart).
    NOT_FOUND = 4404
    # No token in the query and no `auth` message within REALTIME_AUTH_TIMEOUT_SECONDS.
    AUTH_TIMEOUT = 4408
    # The client read too slowly: more than REALTIME_QUEUE_SIZE messages were waiting for it.
    SLOW_CONSUMER = 4413
    # Standard codes the server also uses.
    GOING_AWAY = 1001  # the server is shutting down: reconnect (with `since`)
    INTERNAL_ERROR = 1011  # a bug: reconnect
    TRY_AGAIN_LATER = 1013  # the realtime backend (Redis) is unreachable right now


class _ClientMessage(BaseModel):
    # Fields a client adds for itself (a request id, a timestamp) are ignored.
    model_config = ConfigDict(extra="ignore")


class AuthMessage(_ClientMessage):
    """The first message, when the URL carries no `token`."""

    type: Literal["auth"]
    token: str = Field(min_length=1, max_length=4096, description="Access token or API key")


class SubscribeMessage(_ClientMessage):
    """Narrow this socket to news about `resource_id` (a job or a content resource); several
    subscriptions add up. A socket with none receives everything on its channel."""

    type: Literal["subscribe"]
    resource_id: uuid.UUID


class UnsubscribeMessage(_ClientMessage):
    type: Literal["unsubscribe"]
    resource_id: uuid.UUID


class PingMessage(_ClientMessage):
    """The server answers `pong`."""

    type: Literal["ping"]


class PongMessage(_ClientMessage):
    """An answer to the server's `ping` (optional)."""

    type: Literal["pong"]


ClientMessage = Annotated[
    AuthMessage | SubscribeMessage | UnsubscribeMessage | PingMessage | PongMessage,
    Field(discriminator="type"),
]
client_messages: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)
