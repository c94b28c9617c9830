"""How a web source authenticates: a discriminated union on `mode` (none, basic, bearer, an
API key in a header or the query, or an OAuth2 client-credentials grant)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from creativeflow.datasources.base import CredentialRef, Secret
from creativeflow.datasources.fields import url_host_port
from creativeflow.datasources.web.common import BaseUrl, header_name

_SCOPE = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]{1,200}$")  # RFC 6749 scope-token


def _not_empty(value: SecretStr | CredentialRef) -> SecretStr | CredentialRef:
    if isinstance(value, SecretStr) and not value.get_secret_value():
        raise ValueError("must not be empty")
    return value


class _Auth(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class NoAuth(_Auth):
    """No credentials."""

    mode: Literal["none"] = Field(default="none", description="No authentication")


class BasicAuth(_Auth):
    """HTTP Basic: a user name and password."""

    mode: Literal["basic"] = Field(description="HTTP Basic authentication")
    username: str = Field(min_length=1, max_length=256, description="User name")
    password: Secret

    _password = field_validator("password")(_not_empty)

    @field_validator("username")
    @classmethod
    def _no_colon(cls, value: str) -> str:
        if ":" in value:
            raise ValueError("must not hold ':' (HTTP Basic cannot carry it)")
        return value


class BearerAuth(_Auth):
    """A bearer token sent as `Authorization: Bearer <token>`."""

    mode: Literal["bearer"] = Field(description="A bearer token")
    token: Secret

    _token = field_validator("token")(_not_empty)


class ApiKeyAuth(_Auth):
    """An API key sent in a header or a query parameter."""

    mode: Literal["api_key"] = Field(description="An API key in a header or the query")
    name: Annotated[str, Field(description="The header or query parameter's name (X-API-Key)")]
    value: Secret
    location: Literal["header", "query"] = Field(
        default="header", description="Where the key goes: a header or a query parameter"
    )

    _value = field_validator("value")(_not_empty)
    _name = field_validator("name")(header_name)


class OAuth2ClientCredentials(_Auth):
    """An OAuth2 client-credentials grant: a token is fetched from `token_url` for each
    connection test, discovery or preview, and sent as a bearer token."""

    mode: Literal["oauth2_client_credentials"] = Field(
        description="An OAuth2 client-credentials grant"
    )
    token_url: BaseUrl = Field(description="The authorization server's token endpoint")
    client_id: str = Field(min_length=1, max_length=512, description="The OAuth2 client id")
    client_secret: Secret
    scopes: list[str] = Field(
        default_factory=list, max_length=50, description="Scopes to ask for (may be none)"
    )
    audience: str | None = Field(
        default=None, max_length=512, description="The `audience` parameter, where required"
    )
    client_authentication: Literal["client_secret_basic", "client_secret_post"] = Field(
        default="client_secret_basic",
        description="How the client authenticates at the token endpoint: HTTP Basic, or "
        "client_id and client_secret in the form",
    )

    _client_secret = field_validator("client_secret")(_not_empty)

    @field_validator("scopes")
    @classmethod
    def _scope_tokens(cls, value: list[str]) -> list[str]:
        for scope in value:
            if not _SCOPE.match(scope):
                raise ValueError(f"{scope!r} is not a scope (no spaces, quotes or backslashes)")
        return value


AnyAuth = NoAuth | BasicAuth | BearerAuth | ApiKeyAuth | OAuth2ClientCredentials
HttpAuth = Annotated[
    AnyAuth,
    Field(
        discriminator="mode",
        description="How requests authenticate: none, basic, bearer, api_key or "
        "oauth2_client_credentials (`mode`)",
    ),
]


def auth_hosts(auth: AnyAuth) -> list[tuple[str, int]]:
    """The hosts authentication reaches besides the source (the token endpoint)."""
    if isinstance(auth, OAuth2ClientCredentials):
        return [url_host_port(auth.token_url)]
    return []
