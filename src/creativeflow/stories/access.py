"""Who may read and change a project, and so everything in it: its owner, its members (editors
change content, viewers read) and instance administrators. Registered as the `project` subject
type (and its panels as the `panel` subject type), so the project's jobs, images and WebSocket
channel follow the same membership."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select, union

from creativeflow.access import register_subject_type
from creativeflow.identity.principal import Principal
from creativeflow.stories.content.models import Panel
from creativeflow.stories.projects.models import MemberRole, Project, ProjectMember

PROJECT_SUBJECT = "project"
# Images uploaded for one panel (`panel_id` on upload) belong to it: whoever may read (change)
# the panel's project may read (change) them.
PANEL_SUBJECT = "panel"


def readable_projects(principal: Principal) -> Select[Any]:
    if principal.is_admin:
        return select(Project.id)
    return (
        union(
            select(Project.id).where(Project.owner_id == principal.user_id),
            select(ProjectMember.project_id).where(ProjectMember.user_id == principal.user_id),
        )
        .subquery()
        .select()
    )


def writable_projects(principal: Principal) -> Select[Any]:
    if principal.is_admin:
        return select(Project.id)
    return (
        union(
            select(Project.id).where(Project.owner_id == principal.user_id),
            select(ProjectMember.project_id).where(
                ProjectMember.user_id == principal.user_id,
                ProjectMember.role == MemberRole.EDITOR.value,
            ),
        )
        .subquery()
        .select()
    )


def readable_panels(principal: Principal) -> Select[Any]:
    return select(Panel.id).where(Panel.project_id.in_(readable_projects(principal)))


def writable_panels(principal: Principal) -> Select[Any]:
    return select(Panel.id).where(Panel.project_id.in_(writable_projects(principal)))


def register_story_subjects() -> None:
    register_subject_type(PROJECT_SUBJECT, readable=readable_projects, writable=writable_projects)
    register_subject_type(PANEL_SUBJECT, readable=readable_panels, writable=writable_panels)
