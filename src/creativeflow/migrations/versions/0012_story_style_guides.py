"""story style guides

`story_style_guides`: one per project at most (deleted with it): art style, palette, line
weight, lettering, aspect ratio, negative prompt and reference image ids, versioned.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 12:19:58.680469
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import creativeflow.db.types

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "story_style_guides",
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("art_style", sa.String(length=500), nullable=True),
        sa.Column("palette", creativeflow.db.types.JSONDocument, nullable=False),
        sa.Column("line_weight", sa.String(length=16), nullable=True),
        sa.Column("lettering", sa.String(length=200), nullable=True),
        sa.Column("aspect_ratio", sa.String(length=16), nullable=True),
        sa.Column("negative_prompt", sa.Text(), nullable=True),
        sa.Column("reference_image_ids", creativeflow.db.types.JSONDocument, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", creativeflow.db.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", creativeflow.db.types.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "line_weight IN ('thin', 'medium', 'bold', 'varied')",
            name=op.f("ck_story_style_guides_line_weight"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["story_projects.id"],
            name=op.f("fk_story_style_guides_project_id_story_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_story_style_guides")),
        sa.UniqueConstraint("project_id", name=op.f("uq_story_style_guides_project_id")),
    )


def downgrade() -> None:
    op.drop_table("story_style_guides")
