"""Google's sources over its REST APIs (no Google SDK): Cloud Storage, Sheets and YouTube."""

from __future__ import annotations

from creativeflow.datasources.base import SourceType
from creativeflow.datasources.google import gcs, google_sheets, youtube

SOURCE_TYPES: tuple[SourceType, ...] = (
    gcs.SOURCE_TYPE,
    google_sheets.SOURCE_TYPE,
    youtube.SOURCE_TYPE,
)
