"""A subject type for the tests: `tests.profile`, whose one subject is a user's own profile
(its id is the user's id), readable and writable by that user only. Enough to exercise subject
channels before the story studio registers its projects."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from creativeflow.access import register_subject_type, unregister_subject_type
from creativeflow.identity.models import User
from creativeflow.identity.principal import Principal

PROFILE = "tests.profile"


def _own_profile(principal: Principal) -> Select[Any]:
    return select(User.id).where(User.id == principal.user_id)


def register_profiles() -> None:
    register_subject_type(PROFILE, readable=_own_profile, writable=_own_profile)


def unregister_profiles() -> None:
    unregister_subject_type(PROFILE)
