"""One MQTT connection through paho-mqtt's public client API, driven by the asyncio loop.

paho connects over a blocking socket (TCP, then the TLS handshake, each bounded by
`connect_timeout`) and sends CONNECT, so that runs in a worker thread. From then on the socket
is non-blocking and the loop drives it: a reader calls `loop_read`, and a writer `loop_write`
while paho has bytes to send (paho asks through on_socket_register_write and
on_socket_unregister_write). No PINGREQ ever falls due (`loop_misc`): the keepalive outlasts
the operation.

Every way out closes the socket: paho closes it itself on a refused CONNACK or a lost
connection, `close()` sends DISCONNECT and closes whatever is left (the socket paho's public
`socket()` answers, and a TLS socket whose handshake failed before paho kept it), and a connect
abandoned in its thread (the time limit, a cancellation) is closed by that thread when it ends.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode


class MqttRefused(Exception):
    """The broker answered CONNECT with a refusing CONNACK (an MQTT 5 reason code)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class MqttClosed(Exception):
    """The connection ended before its CONNACK, or while waiting for something."""


def _tracking(opened: list[ssl.SSLSocket]) -> type[ssl.SSLSocket]:
    """An SSLSocket class (SSLContext.sslsocket_class) that notes each socket it makes: paho
    drops a socket whose handshake fails without closing it."""

    class Tracked(ssl.SSLSocket):
        def do_handshake(self, block: bool = False) -> None:
            opened.append(self)
            super().do_handshake(block)

    return Tracked


class MqttSession:
    def __init__(
        self,
        *,
        client_id: str,
        v5: bool,
        username: str | None,
        password: str | None,
        tls: ssl.SSLContext | None,
        keepalive: int,
        connect_timeout: float,
    ) -> None:
        self.client_id = client_id
        self._loop = asyncio.get_running_loop()
        self._v5 = v5
        self._keepalive = keepalive
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=None if v5 else True,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            reconnect_on_failure=False,
        )
        if username is not None or password is not None:
            self._client.username_pw_set(username, password)
        self._tls_sockets: list[ssl.SSLSocket] = []
        if tls is not None:
            tls.sslsocket_class = _tracking(self._tls_sockets)
            self._client.tls_set_context(tls)
        self._client.connect_timeout = connect_timeout
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._dialled = False
        self._abandoned = False
        self._connack: asyncio.Future[int] = self._loop.create_future()
        self._subacks: dict[int, asyncio.Future[list[int]]] = {}
        self._messages: asyncio.Queue[mqtt.MQTTMessage | None] = asyncio.Queue()

    # -- connecting -----------------------------------------------------------------------

    async def connect(self, host: str, port: int) -> None:
        """Connected, CONNACK accepted; MqttRefused, MqttClosed, or the socket's OSError."""
        try:
            await self._loop.run_in_executor(None, self._dial, host, port)
        except BaseException:
            with self._lock:
                # A connect still running in its thread closes its own socket when it ends.
                self._abandoned = True
                if self._dialled:
                    self._close_sockets()
            raise
        client = self._client
        sock = client.socket()
        if sock is None:
            raise MqttClosed()
        self._fd = sock.fileno()
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        self._loop.add_reader(self._fd, self._read)
        if client.want_write():
            self._loop.add_writer(self._fd, self._write)
        code = await self._connack
        if code != 0:
            raise MqttRefused(code)

    def _dial(self, host: str, port: int) -> None:
        """In a worker thread: the blocking connect, which sends CONNECT."""
        try:
            if self._v5:
                self._client.connect(host, port, self._keepalive, clean_start=True)
            else:
                self._client.connect(host, port, self._keepalive)
        finally:
            with self._lock:
                self._dialled = True
                if self._abandoned:
                    self._close_sockets()

    # -- paho's callbacks (on the loop, from loop_read and loop_write) ----------------------

    def _read(self) -> None:
        client = self._client
        client.loop_read()
        # TLS may hold decrypted bytes that the selector cannot see.
        while isinstance(sock := client.socket(), ssl.SSLSocket) and sock.pending():
            client.loop_read()

    def _write(self) -> None:
        self._client.loop_write()

    def _on_register_write(self, client: Any, userdata: Any, sock: Any) -> None:
        if self._fd is not None:
            self._loop.add_writer(self._fd, self._write)

    def _on_unregister_write(self, client: Any, userdata: Any, sock: Any) -> None:
        if self._fd is not None:
            self._loop.remove_writer(self._fd)

    def _on_socket_close(self, client: Any, userdata: Any, sock: Any) -> None:
        # paho calls this before it closes the socket, so the descriptor is still valid.
        self._unwatch()
        if not self._connack.done():
            self._connack.set_exception(MqttClosed())
        for future in self._subacks.values():
            if not future.done():
                future.set_exception(MqttClosed())
        self._subacks.clear()
        self._messages.put_nowait(None)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not self._connack.done():
            self._connack.set_result(int(reason.value))

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        future = self._subacks.pop(mid, None)
        if future is not None and not future.done():
            future.set_result([int(code.value) for code in codes])

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._messages.put_nowait(message)

    # -- using the connection -------------------------------------------------------------

    async def subscribe(self, topics: list[str]) -> list[int]:
        """The SUBACK's reason code for each topic filter (QoS 0 subscriptions)."""
        rc, mid = self._client.subscribe([(topic, 0) for topic in topics])
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise MqttClosed()
        future: asyncio.Future[list[int]] = self._loop.create_future()
        self._subacks[mid] = future
        return await future

    async def receive(self) -> mqtt.MQTTMessage:
        """The next message (retained ones first, as the broker sends them)."""
        message = await self._messages.get()
        if message is None:
            self._messages.put_nowait(None)
            raise MqttClosed()
        return message

    # -- closing --------------------------------------------------------------------------

    def close(self) -> None:
        """DISCONNECT when connected, then no socket left open, whatever happened."""
        client = self._client
        if self._fd is not None and client.is_connected():
            client.disconnect()
            client.loop_write()  # DISCONNECT written, paho closes the socket
        for name in ("on_socket_close", "on_socket_register_write", "on_socket_unregister_write"):
            setattr(client, name, None)
        self._unwatch()
        with self._lock:
            if self._dialled or not self._abandoned:
                self._close_sockets()

    def _unwatch(self) -> None:
        if self._fd is not None:
            self._loop.remove_reader(self._fd)
            self._loop.remove_writer(self._fd)
            self._fd = None

    def _close_sockets(self) -> None:
        sock = self._client.socket()
        if sock is not None:
            sock.close()
        for tls_sock in self._tls_sockets:
            tls_sock.close()
        self._tls_sockets.clear()
