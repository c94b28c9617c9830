"""ideas: on SQLite, the stage and priority indexes carry the tag keys

A search filtered by stage or priority and by tags walks one of these indexes; with `tag_keys`
in it, SQLite tests the tags from the index and reads only the candidate rows. PostgreSQL
answers tags with its GIN index and keeps the narrower indexes. Each backend's unused variant
is a partial index with an always-false predicate (as in 0002): no rows, no cost, and
autogenerate compares equal on both.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 04:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FILTERS = ("stage", "priority")


def upgrade() -> None:
    on_sqlite = op.get_bind().dialect.name == "sqlite"
    for column in _FILTERS:
        if on_sqlite:
            op.drop_index(f"ix_ideas_user_id_{column}", table_name="ideas")
            op.create_index(
                f"ix_ideas_user_id_{column}",
                "ideas",
                ["user_id", column, "created_at", "id"],
                sqlite_where=text("0"),
            )
        op.create_index(
            f"ix_ideas_user_id_{column}_tags",
            "ideas",
            ["user_id", column, "created_at", "id", "tag_keys"],
            postgresql_where=text("false"),
        )


def downgrade() -> None:
    on_sqlite = op.get_bind().dialect.name == "sqlite"
    for column in _FILTERS:
        op.drop_index(f"ix_ideas_user_id_{column}_tags", table_name="ideas")
        if on_sqlite:
            op.drop_index(f"ix_ideas_user_id_{column}", table_name="ideas")
            op.create_index(
                f"ix_ideas_user_id_{column}", "ideas", ["user_id", column, "created_at", "id"]
            )
