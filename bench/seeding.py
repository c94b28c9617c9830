"""Synthetic content ideas, bulk-loaded straight into the database for the benchmark.

Rows are generated deterministically (fixed seed) with realistic titles and notes built from a
small creator vocabulary, so `search` has words to find at different selectivities; stages,
priorities and tags follow skewed distributions; `created_at` is spread over the last three
years and every id is a real `creativeflow.db.ids.uuid7()` minted with the clock set to the row's
`created_at`, so ids sort like the timestamps they carry (as they do in production).

Values are converted with the application's own column types (`Idea.__table__`), so the stored
format (ranks for stage/priority, UUID and timestamp encodings on SQLite, JSONB on PostgreSQL) is
exactly what the platform writes. SQLite is loaded with stdlib `sqlite3.executemany` in one
transaction, PostgreSQL with asyncpg's binary COPY; then `idea_counters.total` is set for every
user, and PostgreSQL gets VACUUM ANALYZE and a CHECKPOINT.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock
from urllib.parse import urlencode

from creativeflow.db import ids
from creativeflow.ideas.models import Idea, IdeaCounter, IdeaPriority, IdeaStage

# -- vocabulary ---------------------------------------------------------------------------------

# Topics carry a weight: the first ones are common, the tail is rare. The benchmark's `search`
# words are picked from different parts of this list (see SEARCH_WORDS).
TOPICS: list[tuple[str, int]] = [
    ("AI tools", 30),
    ("productivity", 26),
    ("budget travel", 22),
    ("home cooking", 20),
    ("photography", 18),
    ("video editing", 16),
    ("podcast", 15),
    ("personal finance", 14),
    ("remote work", 13),
    ("fitness", 12),
    ("minimalism", 11),
    ("smartphone camera", 10),
    ("newsletter growth", 10),
    ("book reviews", 9),
    ("meal prep", 9),
    ("indie games", 8),
    ("watercolor painting", 8),
    ("home office", 7),
    ("coffee brewing", 7),
    ("language learning", 7),
    ("mechanical keyboards", 6),
    ("urban gardening", 6),
    ("side hustle", 6),
    ("retro computing", 5),
    ("vegan recipes", 5),
    ("mountain biking", 5),
    ("3D printing", 4),
    ("sourdough bread", 4),
    ("street photography", 4),
    ("film cameras", 3),
    ("bird watching", 3),
    ("calligraphy", 3),
    ("beekeeping", 2),
    ("origami", 2),
    ("astrophotography", 2),
    ("kombucha", 1),
]
AUDIENCES = [
    "beginners",
    "busy parents",
    "students",
    "freelancers",
    "small businesses",
    "creators",
    "developers",
    "retirees",
    "teachers",
    "designers",
    "solo travelers",
    "remote teams",
]
TITLE_TEMPLATES = [
    "Top {n} {topic} tips for {audience}",
    "How to get started with {topic}",
    "{topic}: mistakes {audience} make",
    "Why {audience} should care about {topic}",
    "A week of {topic} on a tight budget",
    "The ultimate {topic} checklist",
    "{topic} myths, debunked",
    "What I learned from {n} years of {topic}",
    "{topic} vs {topic2}: an honest comparison",
    "Behind the scenes: my {topic} workflow",
    "{n} {topic} tools I use every day",
    "Interview idea: a {topic} expert on {topic2}",
    "Reacting to viral {topic} videos",
    "The science behind {topic}",
    "Beginner's guide to {topic} for {audience}",
]
NOTE_SENTENCES = [
    "Open with a personal story about {topic}.",
    "Compare three approaches and rank them for {audience}.",
    "Include a short demo and a downloadable checklist.",
    "Link back to the earlier piece on {topic2}.",
    "Ask the community which {topic} questions they still have.",
    "Keep it under ten minutes; cut the history section.",
    "Pull numbers from last quarter's analytics before drafting.",
    "Could become a series: one episode per {topic2} habit.",
    "Sponsor angle: gear that makes {topic} easier.",
    "Add captions and chapter markers for the video version.",
    "Draft the hook first, then outline the three main points.",
    "Check what competitors published about {topic} this month.",
    "Tone: practical, friendly, no jargon for {audience}.",
    "Needs fresh photos; schedule a shoot on the weekend.",
]
TAGS: list[tuple[str, int]] = [
    ("blog", 30),
    ("video", 28),
    ("social", 22),
    ("tutorial", 18),
    ("newsletter", 14),
    ("podcast", 12),
    ("review", 11),
    ("ai", 10),
    ("tools", 10),
    ("marketing", 9),
    ("design", 8),
    ("writing", 8),
    ("photography", 7),
    ("travel", 7),
    ("food", 7),
    ("fitness", 6),
    ("finance", 6),
    ("tech", 6),
    ("gaming", 5),
    ("music", 4),
    ("education", 4),
    ("productivity", 4),
    ("career", 3),
    ("diy", 3),
    ("books", 3),
    ("film", 2),
    ("fashion", 2),
    ("health", 2),
    ("science", 2),
    ("history", 1),
]
STAGE_WEIGHTS = [
    (IdeaStage.IDEA, 40),
    (IdeaStage.OUTLINE, 25),
    (IdeaStage.DRAFT, 20),
    (IdeaStage.PUBLISHED, 15),
]
PRIORITY_WEIGHTS = [(IdeaPriority.LOW, 30), (IdeaPriority.MEDIUM, 50), (IdeaPriority.HIGH, 20)]
TAG_COUNT_WEIGHTS = [(0, 10), (1, 30), (2, 30), (3, 20), (4, 10)]

# Search words the `filtered` scenario rotates through: common, medium and rare topics.
SEARCH_WORDS = ["productivity", "podcast", "photography", "keyboards", "sourdough"]
# And for `filtered_rare`: the rarest topic, and a word found nowhere (a typo, say).
RARE_SEARCH_WORDS = ["kombucha", "zeppelin"]
FILTER_STAGE = IdeaStage.DRAFT
FILTER_TAGS = ("video", "tutorial")


def filtered_query(word: str) -> str:
    """The query string of the `filtered` scenarios: `word` with the stage and tags."""
    search = urlencode({"search": word, "stage": FILTER_STAGE.value})
    return f"{search}&tags={','.join(FILTER_TAGS)}"


HISTORY = timedelta(days=3 * 365)
# Columns are read from the model at run time, so a column added later (like `tag_keys`) is
# loaded too: derived ones are computed in `_complete`, nullable ones left NULL.
IDEA_COLUMNS = [column.name for column in Idea.__table__.columns]


@dataclass
class LoadStats:
    rows: int = 0
    generate_seconds: float = 0.0
    insert_seconds: float = 0.0
    counters_seconds: float = 0.0
    analyze_seconds: float = 0.0
    per_user: dict[str, int] = field(default_factory=dict)
    # For the big user: how many ideas each search word matches, alone and with the full filter.
    search_matches: dict[str, dict[str, int]] = field(default_factory=dict)
    stage_counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "generate_seconds": round(self.generate_seconds, 2),
            "insert_seconds": round(self.insert_seconds, 2),
            "counters_seconds": round(self.counters_seconds, 2),
            "analyze_seconds": round(self.analyze_seconds, 2),
            "rows_per_second": (
                round(self.rows / self.insert_seconds) if self.insert_seconds else None
            ),
            "per_user": self.per_user,
            "big_user_stage_counts": self.stage_counts,
            "big_user_search_matches": self.search_matches,
        }


class _FrozenClock:
    """Stands in for the `time` module inside creativeflow.db.ids while minting historic ids."""

    def __init__(self) -> None:
        self.ns = 0

    def time_ns(self) -> int:
        return self.ns


def _weighted(rng: random.Random, pairs: Sequence[tuple[Any, int]]) -> Any:
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights=weights, k=1)[0]


class IdeaGenerator:
    def __init__(self, seed: int = 20261122) -> None:
        self.rng = random.Random(seed)
        self._topics, self._topic_w = zip(*TOPICS, strict=True)
        self._tags, self._tag_w = zip(*TAGS, strict=True)

    def _topic(self) -> str:
        return self.rng.choices(self._topics, weights=self._topic_w, k=1)[0]

    def _fill(self, template: str, topic: str) -> str:
        topic2 = self._topic()
        while topic2 == topic:
            topic2 = self._topic()
        text = template.format(
            topic=topic,
            topic2=topic2,
            audience=self.rng.choice(AUDIENCES),
            n=self.rng.choice([3, 5, 7, 10, 12]),
        )
        return text[0].upper() + text[1:]

    def content(self) -> tuple[str, str | None, IdeaStage, IdeaPriority, list[str]]:
        rng = self.rng
        topic = self._topic()
        title = self._fill(rng.choice(TITLE_TEMPLATES), topic)[:200]
        notes: str | None = None
        if rng.random() < 0.85:
            sentences = rng.sample(NOTE_SENTENCES, k=rng.randint(1, 4))
            notes = " ".join(self._fill(s, topic) for s in sentences)
        n_tags = _weighted(rng, TAG_COUNT_WEIGHTS)
        tags: list[str] = []
        while len(tags) < n_tags:
            tag = rng.choices(self._tags, weights=self._tag_w, k=1)[0]
            if tag not in tags:
                tags.append(tag)
        return title, notes, _weighted(rng, STAGE_WEIGHTS), _weighted(rng, PRIORITY_WEIGHTS), tags


def generate_rows(
    users: Sequence[tuple[uuid.UUID, int]], *, now: datetime | None = None, seed: int = 20261122
) -> list[dict[str, Any]]:
    """Rows for every (user id, idea count), in created_at order across all users."""
    gen = IdeaGenerator(seed)
    rng = gen.rng
    now = now or datetime.now(UTC)
    end = now - timedelta(hours=1)
    start = end - HISTORY
    span_ms = int(HISTORY.total_seconds() * 1000)
    start_ms = int(start.timestamp() * 1000)
    stamps: list[tuple[int, uuid.UUID]] = []
    for user_id, count in users:
        stamps.extend((start_ms + rng.randrange(span_ms), user_id) for _ in range(count))
    stamps.sort(key=lambda s: s[0])

    clock = _FrozenClock()
    rows: list[dict[str, Any]] = []
    with mock.patch.object(ids, "time", clock):
        for ms, user_id in stamps:
            clock.ns = ms * 1_000_000 + rng.randrange(1_000_000)
            created = datetime.fromtimestamp(ms / 1000, UTC)
            title, notes, stage, priority, tags = gen.content()
            if rng.random() < 0.3:
                age = (now - created).total_seconds()
                updated = created + timedelta(seconds=rng.uniform(0, min(age, 90 * 86400)))
            else:
                updated = created
            due = created + timedelta(days=rng.randint(1, 60)) if rng.random() < 0.3 else None
            rows.append(
                {
                    "id": ids.uuid7(),
                    "user_id": user_id,
                    "title": title,
                    "notes": notes,
                    "stage": stage,
                    "priority": priority,
                    "tags": tags,
                    "due_date": due,
                    "created_at": created,
                    "updated_at": updated,
                    "created_by": user_id,
                    "updated_by": user_id,
                }
            )
    return rows


def describe(rows: Sequence[dict[str, Any]], big_user: uuid.UUID, stats: LoadStats) -> None:
    per_user: Counter[str] = Counter(str(r["user_id"]) for r in rows)
    stats.per_user = dict(per_user)
    big = [r for r in rows if r["user_id"] == big_user]
    stats.stage_counts = dict(Counter(r["stage"].value for r in big))
    for word in [*SEARCH_WORDS, *RARE_SEARCH_WORDS]:
        w = word.lower()
        hits = [
            r for r in big if w in r["title"].lower() or (r["notes"] and w in r["notes"].lower())
        ]
        filtered = [
            r
            for r in hits
            if r["stage"] is FILTER_STAGE and any(t in r["tags"] for t in FILTER_TAGS)
        ]
        stats.search_matches[word] = {
            "search_only": len(hits),
            "with_stage_and_tags": len(filtered),
        }


def _tag_key(tag: str) -> str:
    from creativeflow.ideas import models

    fold = getattr(models, "tag_key", None)
    return fold(tag) if fold else tag.casefold()


def _complete(row: dict[str, Any]) -> dict[str, Any]:
    """Values for every column of the table, including derived and optional ones."""
    table = Idea.__table__
    for name in IDEA_COLUMNS:
        if name in row:
            continue
        if name == "tag_keys":
            row[name] = [_tag_key(tag) for tag in row["tags"]]
        elif table.c[name].default is not None and table.c[name].default.is_scalar:
            row[name] = table.c[name].default.arg
        elif table.c[name].nullable:
            row[name] = None
        else:
            raise RuntimeError(f"bench/seeding.py does not know how to fill ideas.{name}")
    return row


def _bind(table_rows: Sequence[dict[str, Any]], dialect: Any) -> Iterator[tuple[Any, ...]]:
    """Rows as driver values, converted by the application's own column types."""
    table = Idea.__table__
    processors = [table.c[name].type._cached_bind_processor(dialect) for name in IDEA_COLUMNS]
    for row in table_rows:
        row = _complete(row)
        yield tuple(
            proc(row[name]) if proc is not None and row[name] is not None else row[name]
            for name, proc in zip(IDEA_COLUMNS, processors, strict=True)
        )


# -- SQLite -------------------------------------------------------------------------------------


def load_sqlite(
    path: str,
    rows: Sequence[dict[str, Any]],
    totals: dict[uuid.UUID, int],
    stats: LoadStats,
    *,
    analyze: bool = False,
) -> None:
    from sqlalchemy.dialects.sqlite.aiosqlite import dialect as aiosqlite_dialect

    dialect = aiosqlite_dialect()
    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")  # loading only; the server sets its own pragmas
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("BEGIN")
        conn.executemany(
            f"INSERT INTO ideas ({', '.join(IDEA_COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in IDEA_COLUMNS)})",
            _bind(rows, dialect),
        )
        conn.execute("COMMIT")
        stats.insert_seconds = time.perf_counter() - started

        started = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO idea_counters (id, user_id, total, created_at, updated_at, created_by,"
            " updated_by) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (user_id) DO UPDATE SET total = excluded.total,"
            " updated_at = excluded.updated_at",
            list(_counter_rows(totals, dialect)),
        )
        conn.execute("COMMIT")
        stats.counters_seconds = time.perf_counter() - started
        if analyze:
            started = time.perf_counter()
            conn.execute("ANALYZE")
            stats.analyze_seconds = time.perf_counter() - started
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    stats.rows = len(rows)


def _counter_rows(totals: dict[uuid.UUID, int], dialect: Any) -> Iterator[tuple[Any, ...]]:
    table = IdeaCounter.__table__
    names = ["id", "user_id", "total", "created_at", "updated_at", "created_by", "updated_by"]
    procs = [table.c[name].type._cached_bind_processor(dialect) for name in names]
    now = datetime.now(UTC)
    for user_id, total in totals.items():
        values = [ids.uuid7(), user_id, total, now, now, user_id, user_id]
        yield tuple(p(v) if p else v for p, v in zip(procs, values, strict=True))


# -- PostgreSQL ---------------------------------------------------------------------------------


def load_postgresql(
    dsn: str, rows: Sequence[dict[str, Any]], totals: dict[uuid.UUID, int], stats: LoadStats
) -> None:
    asyncio.run(_load_postgresql(dsn, rows, totals, stats))


async def _load_postgresql(
    dsn: str, rows: Sequence[dict[str, Any]], totals: dict[uuid.UUID, int], stats: LoadStats
) -> None:
    import asyncpg
    from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

    dialect = asyncpg_dialect()
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table(
                "ideas", records=list(_bind(rows, dialect)), columns=IDEA_COLUMNS
            )
        stats.insert_seconds = time.perf_counter() - started

        started = time.perf_counter()
        await conn.executemany(
            "INSERT INTO idea_counters (id, user_id, total, created_at, updated_at, created_by,"
            " updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT (user_id) DO UPDATE SET total = excluded.total,"
            " updated_at = excluded.updated_at",
            [
                (
                    uuid.UUID(str(r[0])),
                    uuid.UUID(str(r[1])),
                    *r[2:5],
                    uuid.UUID(str(r[5])),
                    uuid.UUID(str(r[6])),
                )
                for r in _counter_rows(totals, dialect)
            ],
        )
        stats.counters_seconds = time.perf_counter() - started

        # What a DBA runs after a bulk load, and what the server would otherwise do in the
        # middle of the measurements: statistics, the visibility map (index-only scans), the
        # GIN indexes' pending lists merged (every trigram search reads them whole), and a
        # checkpoint (the load's ~500 MB of WAL otherwise sets one off that writes for minutes,
        # spread across the scenarios).
        started = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        await conn.execute("CHECKPOINT")
        stats.analyze_seconds = time.perf_counter() - started
    finally:
        await conn.close()
    stats.rows = len(rows)


def sample_idea_ids(
    rows: Sequence[dict[str, Any]], user_id: uuid.UUID, k: int, seed: int = 7
) -> list[str]:
    mine = [r["id"] for r in rows if r["user_id"] == user_id]
    return [str(i) for i in random.Random(seed).sample(mine, min(k, len(mine)))]


def tags_json(tags: Sequence[str]) -> str:
    return json.dumps(list(tags))
