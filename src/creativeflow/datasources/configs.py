"""A source's config between the API, the database and the connectors.

The API takes a config as JSON; `parse_config` validates it with its type's model and reports
every problem with its path (`config.port`). What is stored is split in two (`split_config`):
the config with every secret field null (or holding a `{"credential_id"}` reference), and the
secrets' plaintexts by path, which the service encrypts. `masked_config` is what responses
show: `"********"` where a secret is set. `merge_kept_secrets` puts stored secrets back into
an update that left them out (or sent the mask), so an update never loses one.
"""

from __future__ import annotations

import copy
import typing
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, SecretStr, ValidationError

from creativeflow.datasources.base import (
    MASK,
    ConfigProblem,
    CredentialRef,
    SourceConfig,
    SourceType,
    models_in,
    secret_field_paths,
)

_MISSING = object()


def get_path(document: Mapping[str, Any], path: str) -> Any:
    node: Any = document
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def set_path(document: dict[str, Any], path: str, value: Any) -> bool:
    """Set `path` when its parent object exists; False when it does not."""
    *parents, last = path.split(".")
    node: Any = document
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            return False
    node[last] = value
    return True


def _instance_value(config: BaseModel, path: str) -> Any:
    node: Any = config
    for part in path.split("."):
        if not isinstance(node, BaseModel) or part not in type(node).model_fields:
            return _MISSING
        node = getattr(node, part)
    return node


class ConfigInvalid(Exception):
    """Problems with a config, each naming its path inside the config."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


def _union_tags(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> set[str]:
    """The values of Literal fields in nested models: the tags of nested unions (auth modes),
    which Pydantic puts in error locations as if they were fields."""
    seen = seen if seen is not None else set()
    tags: set[str] = set()
    if model in seen:
        return tags
    seen.add(model)
    for info in model.model_fields.values():
        for nested in models_in(info.annotation):
            for nested_info in nested.model_fields.values():
                if typing.get_origin(nested_info.annotation) is Literal:
                    tags.update(str(arg) for arg in typing.get_args(nested_info.annotation))
            tags |= _union_tags(nested, seen)
    return tags


# Union members by type, as Pydantic names them in locations (`password.str`).
_MEMBER_NAMES = {"str", "int", "float", "bool", "dict", "list", "none", "tuple"}


def _location(loc: tuple[int | str, ...], tags: set[str]) -> str:
    """A Pydantic error location as a config path, without union members
    (`auth.basic.password` -> `auth.password`)."""
    parts: list[str] = []
    for item in loc:
        text = str(item)
        if parts and (text[:1].isupper() or "[" in text or text in tags or text in _MEMBER_NAMES):
            continue
        parts.append(text)
    return ".".join(parts)


def parse_config(source_type: SourceType, data: Mapping[str, Any]) -> SourceConfig:
    """The config as its type's model, or ConfigInvalid naming every bad field."""
    try:
        return source_type.config_model.model_validate(data)
    except ValidationError as exc:
        model = source_type.config_model
        secrets = set(secret_field_paths(model))
        tags = _union_tags(model)
        problems: dict[str, str] = {}
        for error in exc.errors(include_url=False):
            field = _location(error["loc"], tags)
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "missing" and field in secrets:
                message = "this secret is required (send it, or a credential_id)"
            # A union reports each member's complaint; the first one says enough.
            problems.setdefault(field, message)
        raise ConfigInvalid([ConfigProblem(f, m) for f, m in problems.items()]) from None


@dataclass(frozen=True, slots=True)
class StoredConfig:
    config: dict[str, Any]  # secret fields null or `{"credential_id": ...}`
    secrets: dict[str, str]  # path -> plaintext (encrypted by the caller)
    credential_ids: list[uuid.UUID]


def split_config(config: SourceConfig) -> StoredConfig:
    stored = config.model_dump(mode="json")
    secrets: dict[str, str] = {}
    credential_ids: list[uuid.UUID] = []
    for path in secret_field_paths(type(config)):
        value = _instance_value(config, path)
        if value is _MISSING:
            continue
        if isinstance(value, SecretStr):
            secrets[path] = value.get_secret_value()
            set_path(stored, path, None)
        elif isinstance(value, CredentialRef):
            credential_ids.append(value.credential_id)
            set_path(stored, path, {"credential_id": str(value.credential_id)})
    return StoredConfig(stored, secrets, list(dict.fromkeys(credential_ids)))


def credential_refs(config: SourceConfig) -> dict[str, uuid.UUID]:
    """Path -> credential id of every secret given by reference."""
    refs: dict[str, uuid.UUID] = {}
    for path in secret_field_paths(type(config)):
        value = _instance_value(config, path)
        if isinstance(value, CredentialRef):
            refs[path] = value.credential_id
    return refs


def secret_paths_present(model: type[SourceConfig], stored: Mapping[str, Any]) -> list[str]:
    """The secret paths that apply to this stored config (its auth variant's, say)."""
    return [path for path in secret_field_paths(model) if get_path(stored, path) is not _MISSING]


def masked_config(stored: Mapping[str, Any], secret_paths: set[str]) -> dict[str, Any]:
    """The stored config as answered: `"********"` where a secret of its own is set."""
    shown = copy.deepcopy(dict(stored))
    for path in secret_paths:
        set_path(shown, path, MASK)
    return shown


def restore_config(stored: Mapping[str, Any], secrets: Mapping[str, str]) -> dict[str, Any]:
    """The stored config with its secrets' plaintexts put back (references stay)."""
    restored = copy.deepcopy(dict(stored))
    for path, plaintext in secrets.items():
        set_path(restored, path, plaintext)
    return restored


def merge_kept_secrets(
    model: type[SourceConfig], incoming: Mapping[str, Any], stored_secrets: Mapping[str, str]
) -> dict[str, Any]:
    """An update's config with every secret it left out, or sent as the mask, taken from the
    stored ones (where the field still applies). An explicit null clears a secret."""
    merged = copy.deepcopy(dict(incoming))
    for path in secret_field_paths(model):
        value = get_path(merged, path)
        if (value is _MISSING or value == MASK) and path in stored_secrets:
            set_path(merged, path, stored_secrets[path])
    return merged


def masks_left(model: type[SourceConfig], config: Mapping[str, Any]) -> list[str]:
    """Secret paths still holding the mask (no stored secret stood behind it)."""
    return [path for path in secret_field_paths(model) if get_path(config, path) == MASK]
