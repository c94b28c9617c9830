"""Project and member queries: the only place in the aggregate that builds SQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select

from creativeflow.db.repository import Repository, escape_like
from creativeflow.stories.projects.models import Project, ProjectMember


def _ordering(sort: str) -> list[ColumnElement[Any]]:
    column = {
        "title": func.lower(Project.title),
        "created_at": Project.created_at,
        "updated_at": Project.updated_at,
    }[sort.lstrip("-")]
    if sort.startswith("-"):
        return [column.desc(), Project.id.desc()]
    return [column.asc(), Project.id.asc()]


class ProjectRepository(Repository[Project]):
    model = Project

    async def lock(self, project_id: uuid.UUID) -> None:
        """Hold the project's row until the transaction ends (PostgreSQL: `FOR UPDATE`;
        SQLite takes one writer at a time anyway): changes of its content's order queue here."""
        await self.session.execute(
            select(Project.id).where(Project.id == project_id).with_for_update()
        )

    async def with_role(
        self, project_id: uuid.UUID, user_id: uuid.UUID
    ) -> tuple[Project, str | None] | None:
        """The project and the user's member role in it (None when not a member)."""
        stmt = (
            select(Project, ProjectMember.role)
            .outerjoin(
                ProjectMember,
                and_(ProjectMember.project_id == Project.id, ProjectMember.user_id == user_id),
            )
            .where(Project.id == project_id)
        )
        row = (await self.session.execute(stmt)).first()
        return None if row is None else (row[0], row[1])

    async def visible_page(
        self,
        *,
        user_id: uuid.UUID | None,
        search: str | None,
        statuses: Sequence[str],
        ownership: str,
        sort: str,
        limit: int,
        offset: int,
        idea_id: uuid.UUID | None = None,
    ) -> tuple[Sequence[Project], int]:
        """Projects the user owns or is a member of (`user_id` None: every project)."""
        stmt = select(Project)
        if user_id is not None:
            shared = select(ProjectMember.project_id).where(ProjectMember.user_id == user_id)
            owned = Project.owner_id == user_id
            if ownership == "owned":
                stmt = stmt.where(owned)
            elif ownership == "shared":
                stmt = stmt.where(Project.id.in_(shared))
            else:
                stmt = stmt.where(or_(owned, Project.id.in_(shared)))
        if search:
            pattern = f"%{escape_like(search.lower())}%"
            stmt = stmt.where(
                or_(
                    func.lower(Project.title).like(pattern, escape="\\"),
                    func.lower(Project.logline).like(pattern, escape="\\"),
                )
            )
        if statuses:
            stmt = stmt.where(Project.status.in_(list(statuses)))
        if idea_id is not None:
            stmt = stmt.where(Project.idea_id == idea_id)
        return await self.page(stmt.order_by(*_ordering(sort)), limit=limit, offset=offset)

    async def roles_of(
        self, project_ids: Sequence[uuid.UUID], user_id: uuid.UUID
    ) -> dict[uuid.UUID, str]:
        if not project_ids:
            return {}
        stmt = select(ProjectMember.project_id, ProjectMember.role).where(
            ProjectMember.project_id.in_(list(project_ids)), ProjectMember.user_id == user_id
        )
        return {row[0]: row[1] for row in await self.session.execute(stmt)}


class MemberRepository(Repository[ProjectMember]):
    model = ProjectMember

    async def of_project(self, project_id: uuid.UUID) -> Sequence[ProjectMember]:
        stmt = (
            select(ProjectMember)
            .where(ProjectMember.project_id == project_id)
            .order_by(ProjectMember.created_at, ProjectMember.id)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def find(self, project_id: uuid.UUID, user_id: uuid.UUID) -> ProjectMember | None:
        stmt = select(ProjectMember).where(
            ProjectMember.project_id == project_id, ProjectMember.user_id == user_id
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()
