"""SQL databases: PostgreSQL, MySQL and MariaDB, SQLite, Microsoft SQL Server."""

from __future__ import annotations

from creativeflow.datasources.base import SourceType
from creativeflow.datasources.sql import mssql, mysql, postgresql, sqlite

SOURCE_TYPES: tuple[SourceType, ...] = (
    postgresql.SOURCE_TYPE,
    mysql.SOURCE_TYPE,
    sqlite.SOURCE_TYPE,
    mssql.SOURCE_TYPE,
)
