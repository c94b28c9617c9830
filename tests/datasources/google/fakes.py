"""What the Google fakes share: service accounts with real RSA keys, a token endpoint that
verifies the JWT assertion as Google's does (signature, audience, issuer, scope, lifetime),
Google's error bodies, and the credential check every fake API makes (bearer token or key)."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from creativeflow.datasources.base import ConnectContext
from creativeflow.datasources.google.auth import JWT_BEARER_GRANT

API_KEY = "AIzaSyD-test-key-0123456789abcdefghijkl"
WRONG_API_KEY = "AIzaSyD-wrong-key-987654321zyxwvutsrqpo"
EMAIL = "reader@creativeflow-test.iam.gserviceaccount.com"


@cache
def rsa_key(number: int) -> rsa.RSAPrivateKey:
    """Test key `number` (generated once per run)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def key_file(
    token_uri: str | None, *, key_number: int = 1, email: str = EMAIL, **extra: Any
) -> str:
    """A service-account key file as the Cloud console writes it."""
    document: dict[str, Any] = {
        "type": "service_account",
        "project_id": "creativeflow-test",
        "private_key_id": f"key-{key_number}",
        "private_key": pem(rsa_key(key_number)),
        "client_email": email,
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
    }
    if token_uri is not None:
        document["token_uri"] = token_uri
    document.update(extra)
    return json.dumps(document)


def google_error(
    code: int, message: str, status: str, reason: str | None = None, *, info: str | None = None
) -> JSONResponse:
    """Google's JSON error body (`errors` as the older APIs give it, ErrorInfo as newer ones)."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if reason:
        error["errors"] = [{"message": message, "domain": "global", "reason": reason}]
    if info:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": info,
                "domain": "googleapis.com",
            }
        ]
    return JSONResponse({"error": error}, status_code=code)


@dataclass
class FakeGoogle:
    """The sign-in side of a fake API: the token endpoint and the check of each request."""

    scope: str
    # client_email -> the public half of the key the account holds.
    accounts: dict[str, Any] = field(default_factory=lambda: {EMAIL: rsa_key(1).public_key()})
    tokens: set[str] = field(default_factory=set)
    assertions: list[dict[str, Any]] = field(default_factory=list)
    api_key: str = API_KEY

    async def token(self, request: Request) -> Response:
        form = await request.form()
        if form.get("grant_type") != JWT_BEARER_GRANT:
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        assertion = str(form.get("assertion", ""))
        audience = f"http://{request.headers['host']}{request.url.path}"
        try:
            issuer = jwt.decode(assertion, options={"verify_signature": False})["iss"]
            public_key = self.accounts[issuer]
        except (jwt.PyJWTError, KeyError):
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "Invalid grant: account not found"},
                status_code=400,
            )
        try:
            claims = jwt.decode(
                assertion,
                public_key,
                algorithms=["RS256"],
                audience=audience,
                issuer=issuer,
                options={"require": ["iss", "aud", "exp", "iat", "scope"]},
            )
        except jwt.PyJWTError:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
                status_code=400,
            )
        if claims["scope"] != self.scope or claims["exp"] - claims["iat"] > 3600:
            return JSONResponse(
                {"error": "invalid_scope", "error_description": "Invalid OAuth scope."},
                status_code=400,
            )
        if abs(claims["iat"] - time.time()) > 60:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        self.assertions.append(claims)
        token = "ya29." + secrets.token_urlsafe(24)
        self.tokens.add(token)
        return JSONResponse({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def refused(self, request: Request, *, anonymous: bool = False) -> Response | None:
        """Google's answer to a request without valid credentials, or None when they hold."""
        authorization = request.headers.get("authorization")
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme != "Bearer" or token not in self.tokens:
                return google_error(
                    401,
                    "Request had invalid authentication credentials.",
                    "UNAUTHENTICATED",
                    "authError",
                )
            return None
        key = request.query_params.get("key")
        if key is not None:
            if key != self.api_key:
                return google_error(
                    400,
                    "API key not valid. Please pass a valid API key.",
                    "INVALID_ARGUMENT",
                    "badRequest",
                    info="API_KEY_INVALID",
                )
            return None
        if anonymous:
            return None
        return google_error(
            401,
            "Anonymous caller does not have access; the request is missing credentials.",
            "UNAUTHENTICATED",
            "required",
        )


def short_context(context: ConnectContext, seconds: float = 1.0) -> ConnectContext:
    return ConnectContext(
        timeout_seconds=seconds,
        allow_private_hosts=context.allow_private_hosts,
        file_root=context.file_root,
    )
