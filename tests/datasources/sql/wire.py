"""A PostgreSQL server that speaks just enough of the wire protocol to refuse a password: it
answers SSLRequest (with TLS when given a context), asks for a cleartext password
(AuthenticationCleartextPassword) and rejects it with SQLSTATE 28P01. It records what the
client sent, so a test can see the password was offered and TLS was negotiated for a name.

Also self-signed certificates for the TLS cases."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SSL_REQUEST = 80877103
PROTOCOL_3 = 196608


@dataclass(slots=True)
class Seen:
    users: list[str] = field(default_factory=list)
    passwords: list[str] = field(default_factory=list)
    tls_names: list[str | None] = field(default_factory=list)


def _message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


async def _startup(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    (length,) = struct.unpack("!I", await reader.readexactly(4))
    body = await reader.readexactly(length - 4)
    return struct.unpack("!I", body[:4])[0], body[4:]


@asynccontextmanager
async def refusing_postgres(
    host: str = "127.0.0.1", tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[int, Seen]]:
    """Serve on `host`:<free port>; yields the port and what clients sent."""
    seen = Seen()
    if tls is not None:
        tls.sni_callback = lambda _sock, name, _ctx: seen.tls_names.append(name)  # type: ignore[assignment,misc]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            code, body = await _startup(reader)
            if code == SSL_REQUEST:
                writer.write(b"S" if tls is not None else b"N")
                await writer.drain()
                if tls is not None:
                    await writer.start_tls(tls)
                code, body = await _startup(reader)
            assert code == PROTOCOL_3
            parts = body.split(b"\x00")
            params = dict(zip(parts[0::2], parts[1::2], strict=False))
            user = params.get(b"user", b"").decode()
            seen.users.append(user)
            writer.write(_message(b"R", struct.pack("!I", 3)))  # cleartext password, please
            await writer.drain()
            kind = await reader.readexactly(1)
            (length,) = struct.unpack("!I", await reader.readexactly(4))
            password = await reader.readexactly(length - 4)
            assert kind == b"p"
            seen.passwords.append(password.rstrip(b"\x00").decode())
            fields = (
                b"SFATAL\x00VFATAL\x00C28P01\x00M"
                + f'password authentication failed for user "{user}"'.encode()
                + b"\x00\x00"
            )
            writer.write(_message(b"E", fields))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, 0)
    try:
        yield server.sockets[0].getsockname()[1], seen
    finally:
        server.close()
        await server.wait_closed()


@dataclass(frozen=True, slots=True)
class Certificate:
    pem: str
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def self_signed(name: str, directory: Path) -> Certificate:
    """A self-signed certificate (its own CA) for the DNS name `name`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    cert_file = directory / f"{name}.crt"
    key_file = directory / f"{name}.key"
    cert_file.write_text(pem)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(pem, cert_file, key_file)
