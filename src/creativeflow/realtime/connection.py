"""One WebSocket connection, from the handshake to the close: authenticate, pick the channel,
subscribe, replay what the client missed, then stream live messages, answer the client's
messages and ping, until either side closes. The protocol is described in
`creativeflow.realtime`."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from creativeflow.identity.principal import Principal
from creativeflow.realtime.hub import RealtimeUnavailable, Subscription, SubscriptionEnded
from creativeflow.realtime.models import MessageType, RealtimeMessage
from creativeflow.realtime.schemas import (
    AuthMessage,
    ClientMessage,
    CloseCode,
    PingMessage,
    SubscribeMessage,
    UnsubscribeMessage,
    client_messages,
)
from creativeflow.realtime.service import RealtimeAccess
from creativeflow.shared.core.exceptions import AuthenticationException, NotFoundException
from creativeflow.shared.core.logging import get_logger

if TYPE_CHECKING:
    from creativeflow.platform import Platform

_log = get_logger("creativeflow.realtime")

MAX_SUBSCRIPTIONS = 100
MAX_MESSAGE_CHARS = 8192
# A close frame's reason is at most 123 bytes (RFC 6455).
_MAX_REASON_BYTES = 123
# A client that does not read cannot take a close frame either: give up on it after this.
_CLOSE_SECONDS = 10.0

ChannelResolver = Callable[[RealtimeAccess, Principal], Awaitable[str]]


class Closing(Exception):
    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class _Disconnected(Exception):
    """The client went away."""


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    if first["type"] == "json_invalid":
        return "bad message: not JSON"
    if first["type"] == "union_tag_not_found":
        return 'bad message: a message needs a "type"'
    if first["type"] == "union_tag_invalid":
        tag = (first.get("ctx") or {}).get("tag", "")
        return f"bad message: unknown type {str(tag)[:40]!r}"
    field = ".".join(str(part) for part in first["loc"][1:]) or "message"
    return f"bad message: {field}: {first['msg']}"


def _reason(text: str) -> str:
    encoded = text.encode()
    if len(encoded) <= _MAX_REASON_BYTES:
        return text
    return encoded[: _MAX_REASON_BYTES - 3].decode(errors="ignore") + "..."


class RealtimeConnection:
    def __init__(self, websocket: WebSocket, platform: Platform, resolve: ChannelResolver) -> None:
        self.websocket = websocket
        self.platform = platform
        self.resolve = resolve
        self.hub = platform.realtime
        self.access = RealtimeAccess(platform)
        settings = platform.settings
        self.auth_timeout = settings.realtime_auth_timeout_seconds
        self.ping_seconds = settings.realtime_ping_seconds

    async def serve(self) -> None:
        await self.websocket.accept()
        try:
            principal = await self._authenticate()
            since = self._since()
            resource_ids = self._resource_ids()
            channel = await self._channel(principal)
            try:
                subscription = await self.hub.subscribe(channel, resource_ids=resource_ids)
            except RealtimeUnavailable as exc:
                _log.warning("realtime_subscribe_failed", channel=channel, error=str(exc))
                raise Closing(CloseCode.TRY_AGAIN_LATER, "realtime is unavailable: retry") from exc
        except Closing as closing:
            await self._close(closing.code, closing.reason)
            return
        except (_Disconnected, WebSocketDisconnect):
            return
        log = _log.bind(channel=channel, user_id=str(principal.user_id))
        log.info("realtime_socket_opened", since=since)
        try:
            code, reason = await self._stream(subscription, since)
        except (_Disconnected, WebSocketDisconnect, OSError):  # gone while being caught up
            code, reason = None, ""
        finally:
            await self.hub.unsubscribe(subscription)
        log.info("realtime_socket_closed", code=code, reason=reason)
        if code is not None:
            await self._close(code, reason)

    # -- before streaming -----------------------------------------------------------------------

    async def _authenticate(self) -> Principal:
        token = self.websocket.query_params.get("token")
        if token is None:
            try:
                async with asyncio.timeout(self.auth_timeout):
                    message = await self._receive()
            except TimeoutError:
                raise Closing(
                    CloseCode.AUTH_TIMEOUT, f"no auth message within {self.auth_timeout:g} s"
                ) from None
            if not isinstance(message, AuthMessage):
                raise Closing(
                    CloseCode.BAD_MESSAGE,
                    'bad message: the first message must be {"type": "auth", "token": ...}',
                )
            token = message.token
        if not token:
            raise Closing(CloseCode.UNAUTHENTICATED, "Not authenticated")
        try:
            return await self.access.authenticate(token)
        except AuthenticationException as exc:
            raise Closing(CloseCode.UNAUTHENTICATED, exc.detail) from exc

    def _since(self) -> int | None:
        value = self.websocket.query_params.get("since")
        if value is None:
            return None
        if not value.isdigit() or len(value) > 18:
            raise Closing(CloseCode.BAD_MESSAGE, "since: must be a sequence number (0 or more)")
        return int(value)

    def _resource_ids(self) -> set[str]:
        values = self.websocket.query_params.getlist("resource_id")
        if len(values) > MAX_SUBSCRIPTIONS:
            raise Closing(
                CloseCode.BAD_MESSAGE, f"resource_id: at most {MAX_SUBSCRIPTIONS} per socket"
            )
        try:
            return {str(uuid.UUID(value)) for value in values}
        except ValueError:
            raise Closing(CloseCode.BAD_MESSAGE, "resource_id: must be a UUID") from None

    async def _channel(self, principal: Principal) -> str:
        try:
            return await self.resolve(self.access, principal)
        except NotFoundException:
            raise Closing(CloseCode.NOT_FOUND, "not found") from None

    async def _receive(self) -> ClientMessage:
        event = await self.websocket.receive()
        if event["type"] == "websocket.disconnect":
            raise _Disconnected
        text = event.get("text")
        if text is None:
            raise Closing(CloseCode.BAD_MESSAGE, "bad message: send JSON text, not binary")
        if len(text) > MAX_MESSAGE_CHARS:
            raise Closing(
                CloseCode.BAD_MESSAGE, f"bad message: longer than {MAX_MESSAGE_CHARS} characters"
            )
        try:
            return client_messages.validate_json(text)
        except ValidationError as exc:
            raise Closing(CloseCode.BAD_MESSAGE, _describe(exc)) from None

    # -- streaming ------------------------------------------------------------------------------

    async def _stream(
        self, subscription: Subscription, since: int | None
    ) -> tuple[CloseCode | None, str]:
        """Run until the socket ends; the close to send (None: the client left)."""
        try:
            replay = await self.hub.replay(subscription.channel, since)
        except RealtimeUnavailable:
            return CloseCode.TRY_AGAIN_LATER, "realtime is unavailable: retry"
        await self._send_control(
            subscription,
            MessageType.CONNECTED,
            {
                "sequence": replay.latest,
                "resource_ids": sorted(subscription.resource_ids),
                "ping_seconds": self.ping_seconds,
            },
        )
        last = since
        if since is not None and not replay.complete:
            await self._send_control(
                subscription,
                MessageType.RELOAD,
                {"reason": "missed messages are no longer kept", "sequence": replay.latest},
            )
            last = replay.latest
        for message in replay.messages:
            if message.concerns(subscription.resource_ids):
                await self.websocket.send_text(message.text)
            last = message.sequence
        tasks = {
            asyncio.create_task(self._pump(subscription, last)),
            asyncio.create_task(self._read(subscription)),
            asyncio.create_task(self._ping(subscription)),
        }
        ended = asyncio.create_task(subscription.ended.wait())
        done, pending = await asyncio.wait({*tasks, ended}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if subscription.ended.is_set():
            code = CloseCode.SLOW_CONSUMER if subscription.overflowed else CloseCode.GOING_AWAY
            return code, subscription.end_reason
        for task in done:
            error = task.exception()
            if isinstance(error, Closing):
                return error.code, error.reason
            if error is not None and not isinstance(
                error, _Disconnected | WebSocketDisconnect | OSError | SubscriptionEnded
            ):
                _log.error("realtime_socket_failed", exc_info=error)
                return CloseCode.INTERNAL_ERROR, "internal error"
        return None, ""

    async def _pump(self, subscription: Subscription, last: int | None) -> None:
        """Live messages, in order, each once: those a replay already sent are skipped."""
        while True:
            message = await subscription.get()
            if message.sequence is not None:
                if last is not None and message.sequence <= last:
                    continue
                last = message.sequence
            elif message.type == MessageType.RELOAD:  # the hub missed messages (Redis away)
                last = message.data.get("sequence", last)
            await self.websocket.send_text(message.text)

    async def _read(self, subscription: Subscription) -> None:
        while True:
            message = await self._receive()
            if isinstance(message, SubscribeMessage | UnsubscribeMessage):
                resource_id = str(message.resource_id)
                if isinstance(message, SubscribeMessage):
                    if (
                        resource_id not in subscription.resource_ids
                        and len(subscription.resource_ids) >= MAX_SUBSCRIPTIONS
                    ):
                        raise Closing(
                            CloseCode.BAD_MESSAGE,
                            f"bad message: at most {MAX_SUBSCRIPTIONS} subscriptions per socket",
                        )
                    subscription.resource_ids.add(resource_id)
                    reply = MessageType.SUBSCRIBED
                else:
                    subscription.resource_ids.discard(resource_id)
                    reply = MessageType.UNSUBSCRIBED
                await self._send_control(
                    subscription,
                    reply,
                    {"resource_ids": sorted(subscription.resource_ids)},
                    resource_id=resource_id,
                )
            elif isinstance(message, PingMessage):
                await self._send_control(subscription, MessageType.PONG, {})
            elif isinstance(message, AuthMessage):
                raise Closing(CloseCode.BAD_MESSAGE, "bad message: already authenticated")
            # A pong needs no answer.

    async def _ping(self, subscription: Subscription) -> None:
        while True:
            await asyncio.sleep(self.ping_seconds)
            await self._send_control(subscription, MessageType.PING, {})

    async def _send_control(
        self,
        subscription: Subscription,
        message_type: MessageType,
        data: dict[str, Any],
        *,
        resource_id: str | None = None,
    ) -> None:
        message = RealtimeMessage.build(
            message_type, subscription.channel, data, resource_id=resource_id
        )
        await self.websocket.send_text(message.text)

    async def _close(self, code: int, reason: str) -> None:
        # The client may be gone already, or too slow to take even the close frame.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_CLOSE_SECONDS):
                await self.websocket.close(code, _reason(reason))
