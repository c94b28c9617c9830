"""Which instructions apply to a target, and why: a pure function over the candidates (no
session needed: transient `Instruction` objects do).

The candidates are the enabled instructions of the target's chain (its project, then its
chapter, its scene, the panel itself, as far as the target goes). They come out from broad to
narrow scope, within a scope by priority (high first) then age (oldest first). Two
instructions conflict when they share a category (not null) at different scopes: the
narrowest scope having that category wins, and each broader one is not applied and names the
winner in `overridden_by` (the winner's first instruction, in that order). Instructions of
one category within one scope all apply. `effective` is the applied texts in prompt order.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from creativeflow.stories.instructions.models import SCOPE_RANK, Instruction, Scope


@dataclass(frozen=True, slots=True)
class Resolved:
    instruction: Instruction
    scope: Scope
    source_id: uuid.UUID
    applied: bool
    overridden_by: uuid.UUID | None


def prompt_order(instruction: Instruction) -> tuple[int, int, datetime, uuid.UUID]:
    """Broad scope first; within a scope high priority first, then the oldest."""
    return (
        SCOPE_RANK[Scope(instruction.scope)],
        -instruction.priority,
        instruction.created_at,
        instruction.id,
    )


def resolve(candidates: Sequence[Instruction]) -> list[Resolved]:
    """Each enabled candidate, in prompt order, applied or overridden by a narrower one."""
    ordered = sorted((c for c in candidates if c.enabled), key=prompt_order)
    # The winner of each category: the first instruction of the narrowest scope having it.
    winners: dict[str, Instruction] = {}
    for candidate in ordered:
        if candidate.category is None:
            continue
        current = winners.get(candidate.category)
        if current is None or SCOPE_RANK[Scope(candidate.scope)] > SCOPE_RANK[Scope(current.scope)]:
            winners[candidate.category] = candidate
    resolved: list[Resolved] = []
    for candidate in ordered:
        winner = winners.get(candidate.category) if candidate.category is not None else None
        overridden = winner is not None and winner.scope != candidate.scope
        resolved.append(
            Resolved(
                instruction=candidate,
                scope=Scope(candidate.scope),
                source_id=candidate.source_id,
                applied=not overridden,
                overridden_by=winner.id if overridden and winner is not None else None,
            )
        )
    return resolved


def effective(resolved: Sequence[Resolved]) -> list[str]:
    """The applied texts, broad to narrow: the order a prompt uses them."""
    return [entry.instruction.text for entry in resolved if entry.applied]


def chain_for(
    instructions: Sequence[Instruction],
    *,
    chapter_id: uuid.UUID | None,
    scene_id: uuid.UUID | None,
    panel_id: uuid.UUID | None,
) -> list[Instruction]:
    """Of a project's instructions, those on the target's chain: the project's and those of
    the chapter, scene and panel given (the in-memory twin of the repository's `chain`)."""
    return [
        instruction
        for instruction in instructions
        if instruction.scope == "project"
        or (chapter_id is not None and instruction.chapter_id == chapter_id)
        or (scene_id is not None and instruction.scene_id == scene_id)
        or (panel_id is not None and instruction.panel_id == panel_id)
    ]
