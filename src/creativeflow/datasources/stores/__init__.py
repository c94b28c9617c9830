"""The store family: document, key-value and search stores (MongoDB, Redis, Elasticsearch)."""

from __future__ import annotations

from creativeflow.datasources.base import SourceType
from creativeflow.datasources.stores import elasticsearch, mongodb, redis

SOURCE_TYPES: tuple[SourceType, ...] = (
    mongodb.SOURCE_TYPE,
    redis.SOURCE_TYPE,
    elasticsearch.SOURCE_TYPE,
)
