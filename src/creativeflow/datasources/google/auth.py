"""How the Google sources sign in: a service-account key, an API key, or nothing (public GCS
buckets).

A service-account key (the JSON file the Cloud console hands out) signs a JWT assertion
(RS256, one API scope, an hour long) that the key's `token_uri` exchanges for an access token
(RFC 7523, as Google's OAuth server speaks it). An API key goes in the `key` query parameter
and reads public data only (public spreadsheets, YouTube). Messages about a key never quote it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from creativeflow.datasources.base import CredentialRef, Secret
from creativeflow.datasources.fields import url_host_port, url_validator

DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_SECONDS = 3600
MAX_KEY_CHARACTERS = 16384

# The same rules as every URL field: http(s), a valid host, no user name or password in it.
_check_token_uri = cast(Callable[[str], str], url_validator("http", "https").func)


class NoAuth(BaseModel):
    """No credentials: a public bucket."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["none"] = Field(description="No credentials (public data only)")


class ApiKeyAuth(BaseModel):
    """A Google Cloud API key: public data only (public spreadsheets, YouTube)."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["api_key"] = Field(description="An API key, sent as the `key` parameter")
    api_key: Secret = Field(
        description="The API key (Google Cloud console > APIs & Services > Credentials); "
        'write-only, answered as "********", or `{"credential_id": "..."}`'
    )


@dataclass(frozen=True, slots=True)
class ServiceAccountKey:
    """The parts of a service-account key file that signing in needs."""

    client_email: str
    private_key: str
    token_uri: str
    private_key_id: str | None = None
    project_id: str | None = None


def parse_service_account_key(text: str) -> ServiceAccountKey:
    """The key file's parts, or ValueError saying what is wrong (never quoting the key)."""
    if len(text) > MAX_KEY_CHARACTERS:
        raise ValueError(f"is longer than a service-account key ({MAX_KEY_CHARACTERS} characters)")
    try:
        document: Any = json.loads(text)
    except ValueError:
        raise ValueError(
            "must be the service-account key file's JSON (IAM > Service accounts > Keys)"
        ) from None
    if not isinstance(document, dict):
        raise ValueError("must be a JSON object (the service-account key file)")
    if document.get("type") != "service_account":
        raise ValueError('must be a service-account key ("type": "service_account")')
    email = document.get("client_email")
    if not isinstance(email, str) or "@" not in email:
        raise ValueError("has no client_email (the service account's address)")
    private_key = document.get("private_key")
    if not isinstance(private_key, str) or "-----BEGIN PRIVATE KEY-----" not in private_key:
        raise ValueError("has no private_key in PEM form (-----BEGIN PRIVATE KEY-----)")
    _check_rsa_key(private_key)
    token_uri = document.get("token_uri", DEFAULT_TOKEN_URI)
    if not isinstance(token_uri, str):
        raise ValueError("has a token_uri that is not a URL")
    try:
        token_uri = _check_token_uri(token_uri)
    except ValueError as exc:
        raise ValueError(f"has a token_uri that {exc}") from None
    key_id = document.get("private_key_id")
    project = document.get("project_id")
    return ServiceAccountKey(
        client_email=email,
        private_key=private_key,
        token_uri=token_uri,
        private_key_id=key_id if isinstance(key_id, str) and key_id else None,
        project_id=project if isinstance(project, str) and project else None,
    )


def _check_rsa_key(pem: str) -> None:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("has a private_key that is not a readable PEM private key") from None
    if not isinstance(key, RSAPrivateKey):
        raise ValueError("has a private_key that is not an RSA key")


class ServiceAccountAuth(BaseModel):
    """A service account's JSON key: signs in with a JWT assertion for an access token."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["service_account"] = Field(
        description="A service-account key (JSON), exchanged for an access token"
    )
    service_account_key: Secret = Field(
        description="The service account's JSON key file, whole; write-only, answered as "
        '"********", or `{"credential_id": "..."}`'
    )

    @field_validator("service_account_key")
    @classmethod
    def _key_file(cls, value: SecretStr | CredentialRef) -> SecretStr | CredentialRef:
        # A shared credential is checked when it is resolved, before the connection.
        if isinstance(value, SecretStr):
            parse_service_account_key(value.get_secret_value())
        return value

    def token_host(self) -> tuple[str, int]:
        """Where the key's token endpoint lives (Google's, when the key is a reference)."""
        uri = DEFAULT_TOKEN_URI
        if isinstance(self.service_account_key, SecretStr):
            uri = parse_service_account_key(self.service_account_key.get_secret_value()).token_uri
        return url_host_port(uri)


GoogleAuth = NoAuth | ApiKeyAuth | ServiceAccountAuth

SheetsAuth = Annotated[
    ServiceAccountAuth | ApiKeyAuth,
    Field(
        discriminator="mode",
        description="A service-account key (private spreadsheets shared with the account) or "
        "an API key (spreadsheets anyone with the link can view)",
    ),
]


def auth_hosts(auth: GoogleAuth) -> list[tuple[str, int]]:
    return [auth.token_host()] if isinstance(auth, ServiceAccountAuth) else []


def signed_assertion(key: ServiceAccountKey, scope: str, *, now: float | None = None) -> str:
    """The JWT the token endpoint exchanges for an access token (RS256, one hour)."""
    import jwt

    issued = int(now if now is not None else time.time())
    claims = {
        "iss": key.client_email,
        "scope": scope,
        "aud": key.token_uri,
        "iat": issued,
        "exp": issued + ASSERTION_SECONDS,
    }
    headers = {"kid": key.private_key_id} if key.private_key_id else None
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers=headers)
