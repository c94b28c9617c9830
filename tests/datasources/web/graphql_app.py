"""A minimal, real GraphQL server for the graphql tests: it parses the query language's core
(operations, variables, arguments, aliases, nested selections), executes over a small schema
(users and their addresses) and answers introspection from the same schema, `errors` as the
spec says. Not supported (answered as errors): fragments, directives, mutations.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SERVER = "MiniGraphQL/0.3"
TOKEN = "graphql-token-3c9a"

# type name → fields: (name, type, arguments as (name, type))
OBJECTS: dict[str, list[tuple[str, str, list[tuple[str, str]]]]] = {
    "Query": [
        ("users", "[User!]!", [("first", "Int")]),
        ("user", "User", [("id", "ID!")]),
        ("version", "String!", []),
        ("tags", "[String!]!", []),
        ("secret", "String", []),
        ("broken", "String", []),
    ],
    "User": [
        ("id", "ID!", []),
        ("name", "String!", []),
        ("age", "Int", []),
        ("score", "Float", []),
        ("active", "Boolean!", []),
        ("address", "Address", []),
    ],
    "Address": [("city", "String", [])],
}
SCALARS = ("ID", "String", "Int", "Float", "Boolean")
USERS = [
    {
        "id": str(i),
        "name": f"user {i}",
        "age": 20 + i,
        "score": i / 2,
        "active": i % 2 == 1,
        "address": {"city": "Bergen"},
    }
    for i in range(1, 6)
]


class GraphQLFailure(Exception):
    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


def _type_ref(text: str) -> dict[str, Any]:
    if text.endswith("!"):
        return {"kind": "NON_NULL", "name": None, "ofType": _type_ref(text[:-1])}
    if text.startswith("["):
        return {"kind": "LIST", "name": None, "ofType": _type_ref(text[1:-1])}
    kind = "SCALAR" if text in SCALARS else "OBJECT"
    return {"kind": kind, "name": text, "ofType": None}


def schema_data() -> dict[str, Any]:
    types: list[dict[str, Any]] = [
        {
            "kind": "OBJECT",
            "name": name,
            "fields": [
                {
                    "name": fname,
                    "type": _type_ref(ftype),
                    "args": [
                        {"name": a, "type": _type_ref(t), "defaultValue": None} for a, t in args
                    ],
                }
                for fname, ftype, args in fields
            ],
        }
        for name, fields in OBJECTS.items()
    ]
    types += [{"kind": "SCALAR", "name": name, "fields": None} for name in SCALARS]
    return {"queryType": {"name": "Query"}, "types": types}


# -- the language ----------------------------------------------------------------------------

_TOKEN = re.compile(
    r'\s+|,|#[^\n]*|(?P<t>"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|[_A-Za-z][_0-9A-Za-z]*|[{}()\[\]:$!=])'
)


def _tokens(text: str) -> list[str]:
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise GraphQLFailure(f"Syntax Error: unexpected {text[position]!r}")
        if match.group("t"):
            tokens.append(match.group("t"))
        position = match.end()
    return tokens


@dataclass
class Selection:
    name: str
    alias: str
    args: dict[str, Any] = field(default_factory=dict)
    children: list[Selection] | None = None


class _Parser:
    def __init__(self, text: str, variables: dict[str, Any]) -> None:
        self.tokens = _tokens(text)
        self.at = 0
        self.variables = variables

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise GraphQLFailure(f"Syntax Error: expected {expected or 'more'}, found {token}")
        self.at += 1
        return token

    def document(self) -> list[Selection]:
        if self.peek() in ("mutation", "subscription", "fragment"):
            raise GraphQLFailure(f"{self.peek()} is not supported here")
        if self.peek() == "query":
            self.take()
            if self.peek() not in ("{", "("):
                self.take()  # the operation's name
            if self.peek() == "(":
                self._variable_definitions()
        selections = self.selection_set()
        if self.peek() is not None:
            raise GraphQLFailure("only one operation per document here")
        return selections

    def _variable_definitions(self) -> None:
        self.take("(")
        while self.peek() != ")":
            self.take("$")
            name = self.take()
            self.take(":")
            while self.peek() not in ("$", ")", "="):
                self.take()
            if self.peek() == "=":
                self.take()
                default = self.value()
                self.variables.setdefault(name, default)
        self.take(")")

    def selection_set(self) -> list[Selection]:
        self.take("{")
        selections = []
        while self.peek() != "}":
            alias = name = self.take()
            if self.peek() == ":":
                self.take()
                name = self.take()
            selection = Selection(name=name, alias=alias)
            if self.peek() == "(":
                self.take()
                while self.peek() != ")":
                    argument = self.take()
                    self.take(":")
                    selection.args[argument] = self.value()
                self.take(")")
            if self.peek() == "{":
                selection.children = self.selection_set()
            selections.append(selection)
        self.take("}")
        return selections

    def value(self) -> Any:
        token = self.take()
        if token == "$":
            return self.variables.get(self.take())
        if token.startswith('"'):
            return token[1:-1]
        if token in ("true", "false"):
            return token == "true"
        if token == "null":
            return None
        if token == "[":
            items = []
            while self.peek() != "]":
                items.append(self.value())
            self.take("]")
            return items
        return float(token) if "." in token else int(token)


# -- execution -------------------------------------------------------------------------------


def _execute(selections: list[Selection], node: Any, type_name: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for selection in selections:
        if selection.name == "__typename":
            result[selection.alias] = type_name
            continue
        if isinstance(node, dict) and callable(node.get(selection.name)):
            value = node[selection.name](**selection.args)
        elif isinstance(node, dict) and selection.name in node:
            value = node[selection.name]
        else:
            raise GraphQLFailure(f'Cannot query field "{selection.name}" on type "{type_name}".')
        child = _child_type(type_name, selection.name)
        if selection.children is not None:
            if isinstance(value, list):
                value = [_execute(selection.children, item, child) for item in value]
            elif value is not None:
                value = _execute(selection.children, value, child)
        result[selection.alias] = value
    return result


def _child_type(type_name: str, field_name: str) -> str:
    for name, ftype, _ in OBJECTS.get(type_name, []):
        if name == field_name:
            return ftype.strip("[]!")
    return "__Introspection"


def _secret() -> str:
    raise GraphQLFailure("You must be logged in to read the secret", "UNAUTHENTICATED")


def _broken() -> str:
    raise GraphQLFailure("the resolver of broken failed", "INTERNAL_SERVER_ERROR")


def _user(id: str) -> dict[str, Any] | None:
    return next((user for user in USERS if user["id"] == id), None)


def root(introspection: bool) -> dict[str, Callable[..., Any] | Any]:
    values: dict[str, Any] = {
        "users": lambda first=None: USERS[:first] if first is not None else USERS,
        "user": _user,
        "version": "0.3",
        "tags": ["red", "green"],
        "secret": _secret,
        "broken": _broken,
    }
    if introspection:
        values["__schema"] = schema_data()
    return values


@dataclass
class GraphqlApi:
    """The server's behaviour: introspection on or off, a bearer token required or not (and
    whether a missing one answers HTTP 401 or 200 with an UNAUTHENTICATED error)."""

    introspection: bool = True
    token: str | None = None
    # Bearer tokens an OAuth2 server issued (the set is shared with it, so it grows).
    issued: set[str] | None = None
    unauthenticated_status: int = 200
    queries: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/graphql", self._graphql, methods=["POST"])])

    def _authorized(self, header: str) -> bool:
        if self.token is None and self.issued is None:
            return True
        bearer = header.removeprefix("Bearer ")
        return bearer == self.token or (self.issued is not None and bearer in self.issued)

    async def _graphql(self, request: Request) -> Response:
        headers = {"X-GraphQL-Server": SERVER}
        body = await request.json()
        self.queries.append(body)
        if not self._authorized(request.headers.get("authorization", "")):
            denied = {"message": "not authenticated", "extensions": {"code": "UNAUTHENTICATED"}}
            return JSONResponse(
                {"errors": [denied]}, status_code=self.unauthenticated_status, headers=headers
            )
        try:
            selections = _Parser(
                body.get("query", ""), dict(body.get("variables") or {})
            ).document()
            if not self.introspection and any(s.name == "__schema" for s in selections):
                raise GraphQLFailure("GraphQL introspection is not allowed")
            data = _execute(selections, root(self.introspection), "Query")
        except GraphQLFailure as exc:
            error: dict[str, Any] = {"message": str(exc)}
            if exc.code:
                error["extensions"] = {"code": exc.code}
            return JSONResponse({"errors": [error], "data": None}, headers=headers)
        return JSONResponse({"data": data}, headers=headers)
