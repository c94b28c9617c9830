"""Fills a JSON Schema document from the input's text, deterministically per seed.

`SchemaFiller` answers a text request that has an output schema but no task builder of its own:
the offline text provider (`local_text.py`) hands it the request's schema, a `TextAnalysis` of
its inputs and a seeded `random.Random`, and gets back a value valid against the schema, built
from the text's keywords, key phrases, sentences and keyword weights. The same schema, text and
seed give the same value (except a date when the text has none: that is today's). It lives apart
from the per-task builders because it knows nothing of the task types: it reads only the schema
and the text.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from creativeflow.providers.nlp import TextAnalysis, shorten, title_case, word_set

_KEYWORD_NAMES = word_set("keyword keywords tag tags hashtag hashtags term terms word words")
_TITLE_NAMES = word_set(
    "title name headline label heading subject topic topics theme themes segment category "
    "product brand"
)
_SENTENCE_NAMES = word_set(
    "description summary overview explanation rationale reason reasoning details detail text "
    "content body strategy analysis insight insights recommendation recommendations note notes "
    "comment message answer prop proposition pitch positioning"
)
_FRACTION_NAMES = word_set("confidence probability likelihood ratio share weight score")
_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_MAX_DEPTH = 8


class SchemaFiller:
    """Builds a JSON value valid against a JSON Schema from one text. Strings come from the
    text's keywords, key phrases and best sentences, chosen by property name (`keywords` ->
    keywords, `title` -> a key phrase, `description` -> a sentence); each use takes the next
    one, so list items differ. Numbers are the keyword weights (0..1) scaled into the bounds:
    relative strength in the text, not measurements. A date is the text's first ISO date, else
    today's (UTC). Unsatisfiable `pattern`s are not guaranteed."""

    def __init__(self, schema: dict[str, Any], doc: TextAnalysis, rng: random.Random) -> None:
        self.root = schema
        self.rng = rng
        self.text = doc.text.lower()
        keywords = doc.keywords(40) or ["item"]
        self.pools = {
            "keyword": keywords,
            "title": [title_case(p) for p in doc.key_phrases(30, names=False)] or keywords,
            # Real sentences first, then fragments (labels, names).
            "sentence": sorted(
                (s.text for s in doc.ranked_sentences()), key=lambda text: len(text.split()) < 4
            )
            or keywords,
        }
        self.scores = list(doc.keyword_scores.values()) or [0.5]
        self.used: Counter[str] = Counter()
        self.enum_orders: dict[str, list[Any]] = {}

    def take(self, pool: str) -> str:
        items = self.pools[pool]
        self.used[pool] += 1
        return items[(self.used[pool] - 1) % len(items)]

    def score(self) -> float:
        self.used["score"] += 1
        return self.scores[(self.used["score"] - 1) % len(self.scores)]

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            target: Any = self.root
            for part in str(schema["$ref"]).lstrip("#/").split("/"):
                target = target.get(part.replace("~1", "/").replace("~0", "~"), {})
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        if "allOf" in schema:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for branch in map(self.resolve, schema["allOf"]):
                merged.setdefault("properties", {}).update(branch.get("properties", {}))
                merged["required"] = [*merged.get("required", []), *branch.get("required", [])]
                merged.update({k: v for k, v in branch.items() if k not in merged})
            schema = merged
        return schema

    def fill(self, schema: dict[str, Any], name: str = "", depth: int = 0) -> Any:
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self.choose(list(schema["enum"]))
        for key in ("anyOf", "oneOf"):
            if key in schema:
                branches = [self.resolve(b) for b in schema[key]]
                useful = [b for b in branches if b.get("type") != "null"] or branches
                rest = {k: v for k, v in schema.items() if k != key}
                return self.fill({**rest, **useful[0]}, name, depth)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((t for t in kind if t != "null"), "null")
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else ""
        if kind == "object":
            return self.fill_object(schema, depth)
        if kind == "array":
            return self.fill_array(schema, name, depth)
        if kind in ("number", "integer"):
            return self.fill_number(schema, name, integer=kind == "integer")
        if kind == "boolean":
            words = [w for w in re.split(r"[_\W]+", name.lower()) if len(w) > 2]
            return any(w in self.text for w in words) if words else self.rng.random() < 0.5
        if kind == "null":
            return None
        return self.fill_string(schema, name)

    def choose(self, values: list[Any]) -> Any:
        """Enum values in turn: those the text mentions, most mentioned first, then the others
        in a seeded order (so the items of a list differ)."""
        key = json.dumps(values, sort_keys=True, default=str)
        if key not in self.enum_orders:
            counts = {
                i: self.text.count(str(v).lower().replace("_", " ")) for i, v in enumerate(values)
            }
            mentioned = sorted((i for i in counts if counts[i]), key=lambda i: -counts[i])
            rest = [i for i in counts if not counts[i]]
            self.rng.shuffle(rest)
            self.enum_orders[key] = [values[i] for i in [*mentioned, *rest]]
        order = self.enum_orders[key]
        self.used[key] += 1
        return order[(self.used[key] - 1) % len(order)]

    def fill_object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        properties: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))
        result = {
            key: self.fill(sub, key, depth + 1)
            for key, sub in properties.items()
            if key in required or depth < _MAX_DEPTH
        }
        for key in required - set(result):
            result[key] = self.fill({}, key, depth + 1)
        extra = schema.get("additionalProperties")
        if not properties and isinstance(extra, dict):
            wanted = max(schema.get("minProperties", 0), min(3, schema.get("maxProperties", 3)))
            for _number in range(wanted):
                result.setdefault(self.take("keyword"), self.fill(extra, "", depth + 1))
        return result

    def fill_array(self, schema: dict[str, Any], name: str, depth: int) -> list[Any]:
        prefix = list(schema.get("prefixItems", []))
        items = schema.get("items", {})
        lowest = int(schema.get("minItems", 0))
        highest = int(schema.get("maxItems", len(prefix) if items is False else 1000))
        default = 8 if set(re.split(r"[_\W]+", name.lower())) & _KEYWORD_NAMES else 3
        count = lowest if depth >= _MAX_DEPTH else max(lowest, min(highest, default))
        items = items if isinstance(items, dict) else {}
        values = [
            self.fill(prefix[i] if i < len(prefix) else items, name, depth + 1)
            for i in range(count)
        ]
        if schema.get("uniqueItems"):
            values = self.distinct(values, items, lowest)
        return values

    def distinct(self, values: list[Any], items: dict[str, Any], lowest: int) -> list[Any]:
        """`values` without repeats; free strings are numbered to keep `minItems`."""
        kept = [v for i, v in enumerate(values) if v not in values[:i]]
        free = items.get("type") == "string" and not {"enum", "const", "pattern", "format"} & set(
            items
        )
        for number, value in enumerate(values):
            if len(kept) >= lowest:
                break
            kept.append(f"{value} ({number + 1})" if free else value)
        return kept

    def fill_number(self, schema: dict[str, Any], name: str, *, integer: bool) -> float | int:
        low, high = schema.get("minimum"), schema.get("maximum")
        if "exclusiveMinimum" in schema:
            low = schema["exclusiveMinimum"] + (1 if integer else 1e-6)
        if "exclusiveMaximum" in schema:
            high = schema["exclusiveMaximum"] - (1 if integer else 1e-6)
        share = self.score()
        words = set(re.split(r"[_\W]+", name.lower()))
        if low is None and high is None and words & _FRACTION_NAMES and not integer:
            low, high = 0.0, 1.0
        low = low if low is not None else (high - 100 if high is not None else 0)
        high = high if high is not None else low + 100
        value: float = low + share * (high - low)
        step = schema.get("multipleOf")
        if step:
            value = min(
                max(round(value / step) * step, -(-low // step) * step), high // step * step
            )
        if integer:
            return int(min(max(round(value), -(-low // 1)), high // 1))
        return round(min(max(value, low), high), 6)

    def fill_string(self, schema: dict[str, Any], name: str) -> str:
        value = self.formatted(schema.get("format"), name) or self.by_name(schema, name)
        pattern = schema.get("pattern")
        if pattern and not re.search(pattern, value):
            pool = [*self.pools["keyword"], *self.pools["title"], *self.pools["sentence"]]
            value = next((v for v in pool if re.search(pattern, v)), value)
        shortest = schema.get("minLength", 0)
        while len(value) < shortest:
            value = f"{value} {self.take('sentence')}"
        limit = schema.get("maxLength")
        if limit is None or len(value) <= limit:
            return value
        cut = shorten(value, limit)
        return cut if len(cut) >= shortest else value[:limit]

    def by_name(self, schema: dict[str, Any], name: str) -> str:
        words = set(re.split(r"[_\W]+|(?<=[a-z])(?=[A-Z])", name.lower()))
        if words & _KEYWORD_NAMES:
            return self.take("keyword")
        if words & _TITLE_NAMES:
            return self.take("title")
        if words & _SENTENCE_NAMES:
            return self.take("sentence")
        limit = schema.get("maxLength", 100)
        return self.take("keyword" if limit <= 40 else "title" if limit <= 100 else "sentence")

    def formatted(self, fmt: str | None, name: str) -> str | None:
        if fmt in ("date", "date-time"):
            found = _DATE.search(self.text)
            day = found.group() if found else datetime.now(UTC).date().isoformat()
            return day if fmt == "date" else f"{day}T00:00:00Z"
        if fmt == "time":
            return "12:00:00Z"
        if fmt == "ipv4":
            return "192.0.2.1"  # the documentation range
        if fmt == "uuid":
            return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{name}/{self.rng.random()}"))
        if fmt not in ("email", "uri", "url", "hostname"):
            return None
        slug = re.sub(r"[^a-z0-9]+", "-", self.take("keyword").lower()).strip("-") or "item"
        if fmt == "email":
            return f"{slug}@example.com"
        return f"{slug}.example.com" if fmt == "hostname" else f"https://example.com/{slug}"
