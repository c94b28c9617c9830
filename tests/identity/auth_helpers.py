"""Helpers for the authentication tests: reading and forging tokens, checking 401 problems,
clients at chosen addresses, a second platform on the same database, a local JWKS server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from creativeflow.app import create_app
from creativeflow.platform import Platform, build_platform
from creativeflow.settings import Settings
from tests.databases import bind_to_transaction

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PROBLEM_JSON = "application/problem+json"


# -- reading and forging tokens ----------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def claims_of(token: str) -> dict[str, Any]:
    """The payload of `token`, unverified (to inspect or to forge from)."""
    return jwt.decode(token, options={"verify_signature": False})


def header_of(token: str) -> dict[str, Any]:
    return jwt.get_unverified_header(token)


def sign_hs256(claims: dict[str, Any], secret: str, **header: Any) -> str:
    return jwt.encode(claims, secret, algorithm="HS256", headers=header or None)


def hmac_token(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """A JWT signed by hand with HMAC-SHA of the header's alg (PyJWT refuses PEM secrets)."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[
        header["alg"]
    ]
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
    signature = hmac.new(secret, signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64url(signature)}"


def unsigned_token(claims: dict[str, Any], alg: str = "none") -> str:
    """`alg: none`: header and payload with an empty signature."""
    return f"{b64url_json({'alg': alg, 'typ': 'JWT'})}.{b64url_json(claims)}."


def with_payload(token: str, claims: dict[str, Any]) -> str:
    """`token` with its payload replaced and the original header and signature kept."""
    header, _payload, signature = token.split(".")
    return f"{header}.{b64url_json(claims)}.{signature}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- asserting problems ------------------------------------------------------------------------


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code, body
    assert body["detail"]
    assert body["correlation_id"] == response.headers["x-correlation-id"]
    assert "Traceback" not in response.text
    return body


def assert_unauthorized(response: httpx.Response, code: str) -> dict[str, Any]:
    """A 401 problem with `WWW-Authenticate: Bearer` and the stable `code`."""
    body = assert_problem(response, 401, code)
    assert response.headers["www-authenticate"] == "Bearer"
    return body


# -- clients and platforms ---------------------------------------------------------------------


def random_address() -> str:
    """A client address of its own, so address throttles kept in Redis never collide."""
    return f"2001:db8:{uuid.uuid4().hex[:4]}::{uuid.uuid4().hex[:4]}"


@asynccontextmanager
async def client_for(platform: Platform, address: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(platform.settings, platform=platform)
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@asynccontextmanager
async def restarted_platform(
    settings: Settings, engine: AsyncEngine, connection: AsyncConnection
) -> AsyncIterator[Platform]:
    """A new platform (fresh in-process state: revocation mirror, throttle, JWKS cache) on the
    same database, as after a restart of the API process."""
    platform = build_platform(settings, engine)
    await bind_to_transaction(platform, connection)
    try:
        yield platform
    finally:
        if platform.redis is not None:
            await platform.redis.aclose()


def redis_reachable(url: str = REDIS_URL) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), 1):
            return True
    except OSError:
        return False


def require_redis() -> str:
    if not redis_reachable():
        pytest.skip(f"Redis is not reachable at {REDIS_URL} (set TEST_REDIS_URL)")
    return REDIS_URL


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- an external identity provider -------------------------------------------------------------


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def jwk_of(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    entry: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    entry.update(kid=kid, use="sig", alg="RS256")
    return entry


class JWKSServer:
    """A real HTTP server on 127.0.0.1 serving a JWKS document the test can change."""

    def __init__(self) -> None:
        self.document: Any = {"keys": []}
        self.status = 200
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                body = (
                    server.document
                    if isinstance(server.document, bytes)
                    else json.dumps(server.document).encode()
                )
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/.well-known/jwks.json"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)
