"""The web family: REST/JSON APIs (`http_api`) and GraphQL APIs (`graphql`), over one guarded
HTTP client with the same auth modes."""

from __future__ import annotations

from creativeflow.datasources.base import SourceType
from creativeflow.datasources.web import graphql, http_api

SOURCE_TYPES: tuple[SourceType, ...] = (http_api.SOURCE_TYPE, graphql.SOURCE_TYPE)
