"""Project rules: who may do what with a project, and its members.

The owner does everything; an `editor` changes the project's content; a `viewer` reads it; an
instance administrator acts as the owner. Anyone else is told the project does not exist
(404). A member who lacks the right gets 403. `ProjectService.grant` is how every aggregate of
the story studio checks access to the project its thing lives in.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from creativeflow.db.ids import uuid7
from creativeflow.db.versioning import ensure_version
from creativeflow.ideas.service import IdeaService
from creativeflow.identity.principal import Principal
from creativeflow.identity.service import find_active_user, user_summaries
from creativeflow.shared.core.exceptions import (
    ConflictException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from creativeflow.shared.messaging.bus import record_event
from creativeflow.stories.events import StoryContentChanged
from creativeflow.stories.projects.models import MemberRole, Project, ProjectMember
from creativeflow.stories.projects.repository import MemberRepository, ProjectRepository
from creativeflow.stories.projects.schemas import (
    MAX_GENRES,
    MemberAdd,
    MemberRead,
    ProjectCreate,
    ProjectRead,
    ProjectReplace,
    ProjectRole,
    ProjectUpdate,
)


class ProjectNotFound(NotFoundException):
    code = "PROJECT_NOT_FOUND"


class MemberNotFound(NotFoundException):
    code = "MEMBER_NOT_FOUND"


class AlreadyMember(ConflictException):
    code = "ALREADY_MEMBER"


class Need(IntEnum):
    """What an action needs, in increasing order."""

    READ = 1
    WRITE = 2
    OWN = 3


_ROLE_GRANTS = {"viewer": Need.READ, "editor": Need.WRITE, "owner": Need.OWN}


@dataclass(frozen=True, slots=True)
class Grant:
    project: Project
    role: ProjectRole


def project_read(project: Project, role: ProjectRole) -> ProjectRead:
    return ProjectRead(
        id=project.id,
        owner_id=project.owner_id,
        title=project.title,
        logline=project.logline,
        synopsis=project.synopsis,
        genres=project.genres,
        audience=project.audience,
        status=project.status,
        reading_direction=project.reading_direction,
        page_format=project.page_format,
        idea_id=project.idea_id,
        role=role,
        version=project.version,
        created_at=project.created_at,
        updated_at=project.updated_at,
        created_by=project.created_by,
        updated_by=project.updated_by,
    )


class ProjectService:
    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal
        self.projects = ProjectRepository(session)
        self.members = MemberRepository(session)

    # -- access --------------------------------------------------------------------------------

    async def grant(self, project_id: uuid.UUID, need: Need) -> Grant:
        """The project and the caller's role, if the caller may do what `need` says: 404 for a
        stranger, 403 for a member without the right."""
        found = await self.projects.with_role(project_id, self.principal.user_id)
        if found is None:
            raise ProjectNotFound(f"No project {project_id}")
        project, member_role = found
        role: ProjectRole
        if project.owner_id == self.principal.user_id or self.principal.is_admin:
            role = "owner"
        elif member_role is not None:
            role = "editor" if member_role == MemberRole.EDITOR else "viewer"
        else:
            raise ProjectNotFound(f"No project {project_id}")
        if _ROLE_GRANTS[role] < need:
            action = {Need.WRITE: "change", Need.OWN: "manage"}[need]
            raise PermissionDeniedException(
                f"As a {role} of this project you may not {action} it",
                code="PROJECT_ROLE_INSUFFICIENT",
            )
        return Grant(project, role)

    async def lock_structure(self, project_id: uuid.UUID) -> None:
        """Take the project's order lock: chapters, scenes and panels are reordered, moved,
        added and removed one request at a time per project."""
        await self.projects.lock(project_id)

    def changed(
        self,
        project_id: uuid.UUID,
        entity: str,
        entity_id: uuid.UUID,
        action: str,
        version: int | None = None,
    ) -> None:
        """Announce a change to the project's sockets once the request commits."""
        record_event(
            self.session.info,
            StoryContentChanged(
                project_id=project_id,
                entity=entity,
                entity_id=entity_id,
                action=action,  # type: ignore[arg-type]
                entity_version=version,
            ),
        )

    # -- projects ------------------------------------------------------------------------------

    async def create(self, data: ProjectCreate, *, idea_id: uuid.UUID | None = None) -> Project:
        actor = self.principal.user_id
        project = Project(
            id=uuid7(),
            owner_id=actor,
            idea_id=idea_id,
            created_by=actor,
            updated_by=actor,
            **data.model_dump(),
        )
        await self.projects.add(project)
        self.changed(project.id, "project", project.id, "created", project.version)
        return project

    async def create_from_idea(self, idea_id: uuid.UUID) -> Project:
        """A project grown from one of the caller's content ideas: its title, its notes as the
        synopsis, its tags as genres; the project keeps the idea's id (and lists filter by it)."""
        idea = await IdeaService(self.session, self.principal).owned(idea_id)
        genres: list[str] = []
        for tag in idea.tags:
            genre = tag.strip()[:50]
            if genre and genre.lower() not in (g.lower() for g in genres):
                genres.append(genre)
        data = ProjectCreate(
            title=idea.title[:200], synopsis=idea.notes, genres=genres[:MAX_GENRES]
        )
        return await self.create(data, idea_id=idea.id)

    async def list_page(
        self,
        *,
        search: str | None,
        statuses: Sequence[str],
        ownership: str,
        sort: str,
        limit: int,
        offset: int,
        idea_id: uuid.UUID | None = None,
    ) -> tuple[list[ProjectRead], int]:
        user_id = self.principal.user_id
        scope = None if self.principal.is_admin and ownership == "all" else user_id
        rows, total = await self.projects.visible_page(
            user_id=scope,
            search=search,
            statuses=statuses,
            ownership=ownership,
            idea_id=idea_id,
            sort=sort,
            limit=limit,
            offset=offset,
        )
        roles = await self.projects.roles_of([row.id for row in rows], user_id)
        items = []
        for row in rows:
            role: ProjectRole = (
                "owner"
                if row.owner_id == user_id or self.principal.is_admin
                else ("editor" if roles.get(row.id) == MemberRole.EDITOR else "viewer")
            )
            items.append(project_read(row, role))
        return items, total

    async def replace(
        self, project_id: uuid.UUID, data: ProjectReplace, expected: int | None
    ) -> Grant:
        grant = await self.grant(project_id, Need.WRITE)
        ensure_version(grant.project, expected, "project")
        for field, value in data.model_dump(exclude={"version"}).items():
            setattr(grant.project, field, value)
        return await self._saved(grant)

    async def update(
        self, project_id: uuid.UUID, data: ProjectUpdate, expected: int | None
    ) -> Grant:
        grant = await self.grant(project_id, Need.WRITE)
        ensure_version(grant.project, expected, "project")
        for field in data.model_fields_set - {"version"}:
            value = getattr(data, field)
            if value is None and field in ("title", "genres", "status"):
                raise ValidationException.for_field(field, "must not be null")
            setattr(grant.project, field, value)
        return await self._saved(grant)

    async def _saved(self, grant: Grant) -> Grant:
        grant.project.touch(self.principal.user_id)
        await self.projects.flush()
        self.changed(
            grant.project.id, "project", grant.project.id, "updated", grant.project.version
        )
        return grant

    async def delete(self, project_id: uuid.UUID, expected: int | None) -> None:
        """Delete the project and everything in it (owner only)."""
        grant = await self.grant(project_id, Need.OWN)
        ensure_version(grant.project, expected, "project")
        await self.projects.delete(grant.project)
        self.changed(project_id, "project", project_id, "deleted")

    # -- members -------------------------------------------------------------------------------

    async def member_list(self, project_id: uuid.UUID) -> list[MemberRead]:
        grant = await self.grant(project_id, Need.READ)
        members = await self.members.of_project(project_id)
        people = await user_summaries(
            self.session, [grant.project.owner_id, *(m.user_id for m in members)]
        )
        owner = people.get(grant.project.owner_id)
        listed = [
            MemberRead(
                user_id=grant.project.owner_id,
                username=owner.username if owner else "",
                name=owner.name if owner else "",
                role="owner",
                added_at=None,
                added_by=None,
            )
        ]
        for member in members:
            person = people.get(member.user_id)
            listed.append(
                self._member_read(
                    member, person.username if person else "", person.name if person else ""
                )
            )
        return listed

    @staticmethod
    def _member_read(member: ProjectMember, username: str, name: str) -> MemberRead:
        return MemberRead(
            user_id=member.user_id,
            username=username,
            name=name,
            role="editor" if member.role == MemberRole.EDITOR else "viewer",
            added_at=member.created_at,
            added_by=member.created_by,
        )

    async def add_member(self, project_id: uuid.UUID, data: MemberAdd) -> MemberRead:
        grant = await self.grant(project_id, Need.OWN)
        user = await find_active_user(self.session, data.user)
        if user is None:
            raise ValidationException.for_field("user", "no active user has that username or email")
        if user.id == grant.project.owner_id:
            raise ValidationException.for_field("user", "the owner is not added as a member")
        if await self.members.find(project_id, user.id) is not None:
            raise AlreadyMember(f"{user.username} is already a member; change their role instead")
        member = ProjectMember(
            id=uuid7(),
            project_id=project_id,
            user_id=user.id,
            role=data.role.value,
            created_by=self.principal.user_id,
            updated_by=self.principal.user_id,
        )
        try:
            await self.members.add(member)
        except IntegrityError:  # added by a concurrent request
            raise AlreadyMember(f"{user.username} is already a member") from None
        self.changed(project_id, "member", user.id, "created")
        return self._member_read(member, user.username, user.name)

    async def change_member(
        self, project_id: uuid.UUID, user_id: uuid.UUID, role: MemberRole
    ) -> MemberRead:
        await self.grant(project_id, Need.OWN)
        member = await self.members.find(project_id, user_id)
        if member is None:
            raise MemberNotFound(f"{user_id} is not a member of this project")
        member.role = role.value
        member.touch(self.principal.user_id)
        await self.members.flush()
        self.changed(project_id, "member", user_id, "updated")
        person = (await user_summaries(self.session, [user_id])).get(user_id)
        return self._member_read(
            member, person.username if person else "", person.name if person else ""
        )

    async def remove_member(self, project_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """The owner removes anyone; a member may leave."""
        need = Need.READ if user_id == self.principal.user_id else Need.OWN
        await self.grant(project_id, need)
        member = await self.members.find(project_id, user_id)
        if member is None:
            raise MemberNotFound(f"{user_id} is not a member of this project")
        await self.members.delete(member)
        self.changed(project_id, "member", user_id, "deleted")
