"""The store family as the registry sees it: its types in order, each config's discriminator,
and a description on every field (clients render forms from the JSON Schema)."""

from __future__ import annotations

import typing

import pytest
from pydantic import BaseModel

from creativeflow.datasources.base import SourceCategory
from creativeflow.datasources.stores import SOURCE_TYPES
from creativeflow.datasources.stores.elasticsearch import ApiKeyAuth, BasicAuth, NoAuth
from creativeflow.datasources.stores.mongodb import MongoHost


def test_the_types_in_order() -> None:
    assert [source.name for source in SOURCE_TYPES] == ["mongodb", "redis", "elasticsearch"]
    assert [source.category for source in SOURCE_TYPES] == [
        SourceCategory.DATABASE,
        SourceCategory.KEY_VALUE,
        SourceCategory.SEARCH,
    ]
    for source in SOURCE_TYPES:
        assert typing.get_args(source.config_model.model_fields["type"].annotation) == (
            source.name,
        )
        assert source.can_discover and source.can_preview
        assert source.config_model.model_json_schema()["properties"]


@pytest.mark.parametrize(
    "model",
    [*(source.config_model for source in SOURCE_TYPES), MongoHost, NoAuth, BasicAuth, ApiKeyAuth],
)
def test_every_field_is_described(model: type[BaseModel]) -> None:
    undescribed = [
        name for name, info in model.model_fields.items() if name != "type" and not info.description
    ]
    assert undescribed == []
