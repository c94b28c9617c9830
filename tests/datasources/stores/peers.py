"""Peers that speak something else: every connection gets an HTTP 400 and is closed, in plain
text or behind TLS with a certificate for a given name. For the PROTOCOL_ERROR and TLS_ERROR
cases, and to see that TLS verifies the configured name while connecting to the checked
address."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

HTTP_ANSWER = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await reader.read(4096)
        writer.write(HTTP_ANSWER)
        await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


@pytest.fixture
async def http_peer() -> AsyncIterator[int]:
    """The port of a loopback server that answers anything with HTTP."""
    server = await asyncio.start_server(_answer, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


@dataclass(frozen=True, slots=True)
class TlsPeer:
    port: int
    ca_pem: str  # the self-signed certificate, to trust


def _certificate(name: str) -> tuple[str, str]:
    """A self-signed certificate (PEM) for the DNS name `name` only, and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

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
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


def _server_context(certificate: str, key: str) -> ssl.SSLContext:
    """ssl loads a certificate chain only from files."""
    with tempfile.TemporaryDirectory() as directory:
        cert_file, key_file = Path(directory, "cert.pem"), Path(directory, "key.pem")
        cert_file.write_text(certificate)
        key_file.write_text(key)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
    return context


@pytest.fixture
def localhost() -> str:
    """`localhost`, for tests that connect by name; skipped where it does not resolve to
    127.0.0.1 first (the peers listen there only)."""
    first = socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)[0][4][0]
    if ipaddress.ip_address(first) != ipaddress.IPv4Address("127.0.0.1"):
        pytest.skip("localhost does not resolve to 127.0.0.1 first here")
    return "localhost"


@pytest.fixture
async def tls_peer(localhost: str) -> AsyncIterator[Callable[[str], Awaitable[TlsPeer]]]:
    """Starts TLS peers on 127.0.0.1 with a certificate for a name (reached as `localhost`);
    stops them after."""
    servers: list[asyncio.Server] = []

    async def start(name: str) -> TlsPeer:
        certificate, key = _certificate(name)
        context = _server_context(certificate, key)
        server = await asyncio.start_server(_answer, "127.0.0.1", 0, ssl=context)
        servers.append(server)
        return TlsPeer(int(server.sockets[0].getsockname()[1]), certificate)

    try:
        yield start
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()
