"""Who may open which socket (`RealtimeAccess`), on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import Select, select

from creativeflow.access import register_subject_type
from creativeflow.identity.models import User
from creativeflow.identity.principal import Principal
from creativeflow.platform import Platform
from creativeflow.realtime.service import RealtimeAccess
from creativeflow.shared.core.exceptions import AuthenticationException, NotFoundException
from tests.factories import UserFactory
from tests.realtime.subjects import PROFILE, register_profiles, unregister_profiles


async def test_access_tokens_and_api_keys_authenticate(
    platform: Platform, users: UserFactory
) -> None:
    user = await users.create()
    response = await user.post("/api/v1/auth/api-keys", json={"name": "socket"})
    assert response.status_code == 201, response.text
    access = RealtimeAccess(platform)
    by_token = await access.authenticate(user.access_token)
    by_key = await access.authenticate(response.json()["key"])
    assert str(by_token.user_id) == str(by_key.user_id) == user.id
    assert by_key.api_key_id is not None
    keys = (await user.get("/api/v1/auth/api-keys")).json()["items"]
    assert keys[0]["last_used_at"] is not None  # the key's use was recorded


@pytest.mark.parametrize("credential", ["nonsense", "cfk_abcdef_nope", "eyJhbGciOiJub25lIn0.e30."])
async def test_bad_credentials_are_refused(platform: Platform, credential: str) -> None:
    with pytest.raises(AuthenticationException):
        await RealtimeAccess(platform).authenticate(credential)


async def test_a_subject_is_watched_by_those_who_may_read_it(
    platform: Platform, users: UserFactory
) -> None:
    owner, other, admin = await users.create(), await users.create(), await users.admin()
    access = RealtimeAccess(platform)
    owner_principal = await access.authenticate(owner.access_token)
    other_principal = await access.authenticate(other.access_token)
    admin_principal = await access.authenticate(admin.access_token)
    profile = uuid.UUID(owner.id)
    assert await access.subject_channel(owner_principal, profile) == f"subject:{profile}"
    assert await access.subject_channel(admin_principal, profile) == f"subject:{profile}"
    for principal, subject in ((other_principal, profile), (owner_principal, uuid.uuid4())):
        with pytest.raises(NotFoundException):
            await access.subject_channel(principal, subject)
    assert access.user_channel(other_principal) == f"user:{other.id}"


async def test_a_subject_of_a_type_nobody_registers_is_watched_by_its_jobs_owners(
    platform: Platform, users: UserFactory
) -> None:
    """Until the module owning a subject type exists: the owner of a job of that subject."""
    owner, other = await users.create(), await users.create()
    response = await owner.post(
        "/api/v1/tasks/execute",
        json={
            "task_type": "visual_prompt",
            "input": {"description": "A heron"},
            "subject_type": PROFILE,
            "subject_id": owner.id,
        },
    )
    assert response.status_code == 202, response.text
    access = RealtimeAccess(platform)
    owner_principal = await access.authenticate(owner.access_token)
    other_principal = await access.authenticate(other.access_token)
    unregister_profiles()
    try:
        profile = uuid.UUID(owner.id)
        assert await access.subject_channel(owner_principal, profile) == f"subject:{profile}"
        with pytest.raises(NotFoundException):
            await access.subject_channel(other_principal, profile)
    finally:
        register_profiles()


async def test_owning_a_job_does_not_open_a_registered_subject_one_may_not_read(
    platform: Platform, users: UserFactory
) -> None:
    """Once a module answers for a subject type, its answer decides alone: a job someone
    submitted while they could (a collaborator since removed) opens nothing."""
    owner, former = await users.create(), await users.create()
    # While `former` may write every profile (a collaborator), they start a job on owner's.
    register_subject_type(PROFILE, readable=_everyone, writable=_everyone)
    try:
        response = await former.post(
            "/api/v1/tasks/execute",
            json={
                "task_type": "visual_prompt",
                "input": {"description": "A heron"},
                "subject_type": PROFILE,
                "subject_id": owner.id,
            },
        )
        assert response.status_code == 202, response.text
    finally:
        register_profiles()  # removed again: only the owner reads the profile
    access = RealtimeAccess(platform)
    former_principal = await access.authenticate(former.access_token)
    with pytest.raises(NotFoundException):
        await access.subject_channel(former_principal, uuid.UUID(owner.id))


def _everyone(_principal: Principal) -> Select[Any]:
    return select(User.id)
