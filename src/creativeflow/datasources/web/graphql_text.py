"""GraphQL documents for the `graphql` type: a light check that a saved query is one read-only
operation, the introspection query discovery sends, and the schema it answers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from creativeflow.datasources.base import Column, ColumnType

NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")
# Strings and comments (skipped), names, and the brackets that give a document its shape.
_TOKENS = re.compile(
    r'"""[\s\S]*?"""|"(?:[^"\\\n]|\\.)*"|#[^\n\r]*|[_A-Za-z][_0-9A-Za-z]*|[{}()\[\]]'
)
_CLOSING = {"}": "{", ")": "(", "]": "["}


def read_only_operation(text: str) -> str:
    """`text` when it is one query operation (with any fragments); ValueError otherwise. Not a
    full parse: the server judges the rest."""
    if not text.strip():
        raise ValueError("must not be empty")
    stack: list[str] = []
    operations = 0
    expecting = True  # at the start of a definition
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token[0] in '"#':
            continue
        if token in "{([":
            if expecting and token == "{" and not stack:
                operations += 1  # the `{ ... }` shorthand of a query
                expecting = False
            stack.append(token)
        elif token in _CLOSING:
            if not stack or stack.pop() != _CLOSING[token]:
                raise ValueError(f"has an unmatched {token!r}")
            if token == "}" and not stack:
                expecting = True
        elif expecting and not stack:
            if token in ("mutation", "subscription"):
                raise ValueError(
                    f"is a {token}; saved queries are read only (query operations only)"
                )
            if token == "query":
                operations += 1
            elif token != "fragment":
                raise ValueError(
                    f"must be an operation starting with `query` or `{{`, not {token!r}"
                )
            expecting = False
    if stack:
        raise ValueError(f"has an unclosed {stack[-1]!r}")
    if operations == 0:
        raise ValueError("holds no query operation")
    if operations > 1:
        raise ValueError(f"holds {operations} operations; save one per query")
    return text


# -- introspection ---------------------------------------------------------------------------

# Inline rather than a fragment: four levels of wrapping ([Item!]!) and the named type.
_TYPE_REF = "kind name " + "ofType { kind name " * 4 + "}" * 4
INTROSPECTION_QUERY = (
    "query CreativeFlowIntrospection { __schema { queryType { name } types { kind name "
    f"fields {{ name args {{ name defaultValue type {{ {_TYPE_REF} }} }} type {{ {_TYPE_REF} }} }} "
    "} } }"
)
_SCALARS: dict[str, ColumnType] = {
    "Int": "integer",
    "Float": "number",
    "Boolean": "boolean",
    "String": "string",
    "ID": "string",
}
LEAF_KINDS = frozenset({"SCALAR", "ENUM"})
LIST_ARGUMENTS = ("first", "limit")  # an optional Int argument that bounds a list field


def type_text(ref: Any) -> str:
    """A type reference as GraphQL writes it (`[User!]!`)."""
    if not isinstance(ref, Mapping):
        return "?"
    kind = ref.get("kind")
    if kind == "NON_NULL":
        return type_text(ref.get("ofType")) + "!"
    if kind == "LIST":
        return "[" + type_text(ref.get("ofType")) + "]"
    return str(ref.get("name") or "?")


def named_type(ref: Any) -> tuple[str, str, bool]:
    """The (kind, name) a reference wraps, and whether a list is among the wrappers."""
    is_list = False
    while isinstance(ref, Mapping) and ref.get("kind") in ("NON_NULL", "LIST"):
        is_list = is_list or ref.get("kind") == "LIST"
        ref = ref.get("ofType")
    if not isinstance(ref, Mapping):
        return "?", "?", is_list
    return str(ref.get("kind")), str(ref.get("name")), is_list


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: Any  # the introspected type reference
    args: list[dict[str, Any]]

    @property
    def required_args(self) -> list[str]:
        return [
            str(arg.get("name"))
            for arg in self.args
            if isinstance(arg.get("type"), Mapping)
            and arg["type"].get("kind") == "NON_NULL"
            and arg.get("defaultValue") is None
        ]

    def column(self) -> Column:
        kind, name, is_list = named_type(self.type)
        column_type: ColumnType = "array" if is_list else _SCALARS.get(name, "string")
        if kind not in LEAF_KINDS:
            column_type = "array" if is_list else "object"
        nullable = not (isinstance(self.type, Mapping) and self.type.get("kind") == "NON_NULL")
        return Column(self.name, column_type, source_type=type_text(self.type), nullable=nullable)

    def limit_argument(self) -> str | None:
        for arg in self.args:
            if arg.get("name") in LIST_ARGUMENTS and named_type(arg.get("type"))[1] == "Int":
                return str(arg["name"])
        return None


@dataclass(frozen=True, slots=True)
class Schema:
    query_type: str
    types: dict[str, tuple[str, list[Field]]]  # name → (kind, fields)

    @classmethod
    def read(cls, data: Mapping[str, Any]) -> Schema | None:
        """The schema in an introspection answer's `data`, or None when it has none."""
        schema = data.get("__schema")
        if not isinstance(schema, Mapping):
            return None
        query_type = schema.get("queryType")
        name = query_type.get("name") if isinstance(query_type, Mapping) else None
        types: dict[str, tuple[str, list[Field]]] = {}
        for item in schema.get("types") or ():
            if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
                continue
            fields = [
                Field(str(f["name"]), f.get("type"), [a for a in f.get("args") or () if a])
                for f in item.get("fields") or ()
                if isinstance(f, Mapping) and isinstance(f.get("name"), str)
            ]
            types[item["name"]] = (str(item.get("kind")), fields)
        if not isinstance(name, str) or name not in types:
            return None
        return cls(query_type=name, types=types)

    def query_fields(self) -> list[Field]:
        return [f for f in self.types[self.query_type][1] if not f.name.startswith("__")]

    def leaf_fields(self, field: Field) -> list[Field] | None:
        """The scalar fields (without required arguments) of what `field` returns; None when
        it returns a scalar itself."""
        kind, name, _ = named_type(field.type)
        if kind in LEAF_KINDS:
            return None
        _, fields = self.types.get(name, ("", []))
        return [
            f
            for f in fields
            if named_type(f.type)[0] in LEAF_KINDS and not f.required_args and NAME.match(f.name)
        ]

    def columns(self, field: Field) -> list[Column]:
        leaves = self.leaf_fields(field)
        if leaves is None:
            return [field.column()]
        return [leaf.column() for leaf in leaves]
