"""Shared credentials: a secret held once, referenced by id from any number of the owner's
sources (`{"credential_id": ...}` in a secret field). Rotating it changes every source that
uses it at once (they read it at each connection); one in use cannot be deleted (409)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.datasources.errors import (
    CredentialInUse,
    CredentialNameTaken,
    CredentialNotFound,
)
from creativeflow.datasources.models import Credential, CredentialKind, SourceStatus
from creativeflow.datasources.repository import CredentialRepository, DataSourceRepository
from creativeflow.datasources.schemas import (
    CredentialCreate,
    CredentialRotate,
    CredentialUpdate,
    SourceRef,
)
from creativeflow.datasources.service import CREDENTIAL_PURPOSE
from creativeflow.db.ids import uuid7
from creativeflow.db.types import utcnow
from creativeflow.encryption import FieldCipher
from creativeflow.identity.principal import Principal
from creativeflow.shared.core.exceptions import ValidationException


def _checked_secret(kind: CredentialKind, secret: str) -> str:
    """A key file must be a JSON key or a PEM block: caught here rather than at first use."""
    if kind is CredentialKind.KEY_FILE:
        text = secret.strip()
        if text.startswith("{"):
            try:
                json.loads(text)
            except ValueError:
                raise ValidationException.for_field(
                    "secret", "a key file in JSON must be valid JSON"
                ) from None
        elif "-----BEGIN " not in text:
            raise ValidationException.for_field(
                "secret", "a key file must be a JSON key file or a PEM block"
            )
    return secret


class CredentialService:
    def __init__(self, session: AsyncSession, principal: Principal, *, cipher: FieldCipher) -> None:
        self.session = session
        self.principal = principal
        self.cipher = cipher
        self.credentials = CredentialRepository(session)
        self.sources = DataSourceRepository(session)

    @property
    def _scope(self) -> uuid.UUID | None:
        return None if self.principal.is_admin else self.principal.user_id

    async def get(self, credential_id: uuid.UUID) -> Credential:
        credential = await self.credentials.get_owned(credential_id, self._scope)
        if credential is None:
            raise CredentialNotFound(f"No credential {credential_id}")
        return credential

    async def used_by(self, credential: Credential) -> list[SourceRef]:
        return [
            SourceRef(id=source.id, name=source.name, type=source.type)
            for source in await self.sources.using_credential(credential.id)
        ]

    def _encrypt(self, credential_id: uuid.UUID, secret: str) -> str:
        return self.cipher.encrypt(secret, purpose=CREDENTIAL_PURPOSE, row_id=credential_id)

    async def _flush_named(self, name: str) -> None:
        try:
            await self.credentials.flush()
        except IntegrityError:
            raise CredentialNameTaken(f"You already have a credential named {name!r}") from None

    async def create(self, data: CredentialCreate) -> Credential:
        owner_id = self.principal.user_id
        if await self.credentials.name_taken(owner_id, data.name):
            raise CredentialNameTaken(f"You already have a credential named {data.name!r}")
        secret = _checked_secret(data.kind, data.secret.get_secret_value())
        credential_id = uuid7()
        credential = Credential(
            id=credential_id,
            owner_id=owner_id,
            name=data.name,
            kind=data.kind.value,
            identity=data.identity,
            description=data.description,
            secret_ciphertext=self._encrypt(credential_id, secret),
            created_by=owner_id,
            updated_by=owner_id,
        )
        self.session.add(credential)
        await self._flush_named(data.name)
        return credential

    async def list_page(self, *, limit: int, offset: int) -> tuple[Sequence[Credential], int]:
        return await self.credentials.page_for(self._scope, limit=limit, offset=offset)

    async def update(self, credential_id: uuid.UUID, data: CredentialUpdate) -> Credential:
        credential = await self.get(credential_id)
        sent = data.model_fields_set
        if "name" in sent and data.name is not None and data.name != credential.name:
            if await self.credentials.name_taken(
                credential.owner_id, data.name, except_id=credential.id
            ):
                raise CredentialNameTaken(f"You already have a credential named {data.name!r}")
            credential.name = data.name
        if "identity" in sent:
            credential.identity = data.identity
        if "description" in sent:
            credential.description = data.description
        credential.touch(self.principal.user_id)
        await self._flush_named(credential.name)
        return credential

    async def rotate(self, credential_id: uuid.UUID, data: CredentialRotate) -> Credential:
        """A new secret for every source that uses the credential. Their health is unknown
        until they are checked with it."""
        credential = await self.get(credential_id)
        secret = _checked_secret(CredentialKind(credential.kind), data.secret.get_secret_value())
        credential.secret_ciphertext = self._encrypt(credential.id, secret)
        credential.rotated_at = utcnow()
        credential.touch(self.principal.user_id)
        for source in await self.sources.using_credential(credential.id):
            source.status = SourceStatus.UNKNOWN
        await self.credentials.flush()
        return credential

    async def delete(self, credential_id: uuid.UUID) -> None:
        credential = await self.get(credential_id)
        users = await self.used_by(credential)
        if users:
            names = ", ".join(repr(source.name) for source in users[:5])
            raise CredentialInUse(
                f"The credential is used by {len(users)} data source(s): {names}; point them "
                "elsewhere first",
                data={"used_by": [str(source.id) for source in users]},
            )
        await self.credentials.delete(credential)
