"""How a NATS source signs in: the auth modes of its config, and the nats-py options each
becomes. NKey seeds and .creds files need the `nkeys` package (nats-py's `nkeys` extra)."""

from __future__ import annotations

import importlib.util
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from creativeflow.datasources.base import Secret, SourceError, SourceErrorCode, reveal

_SEED = re.compile(r"^SU[A-Z2-7]{56}$")


class _Auth(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoAuth(_Auth):
    mode: Literal["none"] = "none"


class UserPasswordAuth(_Auth):
    mode: Literal["user_password"]
    username: str = Field(min_length=1, max_length=255, description="User name")
    password: Secret = Field(description="Password")


class TokenAuth(_Auth):
    mode: Literal["token"]
    token: Secret = Field(description="Authentication token")


class NkeyAuth(_Auth):
    mode: Literal["nkey"]
    seed: Secret = Field(description="The user's NKey seed (SU...)")

    @field_validator("seed")
    @classmethod
    def _seed(cls, value: Any) -> Any:
        if isinstance(value, SecretStr) and not _SEED.match(value.get_secret_value().strip()):
            raise ValueError("must be a user NKey seed: 58 characters starting with SU")
        return value


class CredsAuth(_Auth):
    mode: Literal["creds"]
    credentials: Secret = Field(
        description="Content of the .creds file (the user JWT and its NKey seed)"
    )

    @field_validator("credentials")
    @classmethod
    def _creds(cls, value: Any) -> Any:
        if isinstance(value, SecretStr):
            text = value.get_secret_value()
            if "BEGIN NATS USER JWT" not in text or "BEGIN USER NKEY SEED" not in text:
                raise ValueError(
                    "must be a .creds file's content, with its NATS USER JWT and USER NKEY "
                    "SEED blocks"
                )
        return value


NatsAuth = Annotated[
    NoAuth | UserPasswordAuth | TokenAuth | NkeyAuth | CredsAuth, Field(discriminator="mode")
]


def auth_options(auth: NatsAuth) -> dict[str, Any]:
    if isinstance(auth, UserPasswordAuth):
        return {"user": auth.username, "password": reveal(auth.password)}
    if isinstance(auth, TokenAuth):
        return {"token": reveal(auth.token)}
    if isinstance(auth, NkeyAuth | CredsAuth) and importlib.util.find_spec("nkeys") is None:
        raise SourceError(
            SourceErrorCode.DRIVER_MISSING,
            f"{auth.mode} authentication needs the nkeys package, which is not installed "
            "here; install it with pip install 'creativeflow[nats]'",
        )
    if isinstance(auth, NkeyAuth):
        return {"nkeys_seed_str": reveal(auth.seed).strip()}
    if isinstance(auth, CredsAuth):
        from nats.aio.client import RawCredentials

        return {"user_credentials": RawCredentials(reveal(auth.credentials))}
    return {}
