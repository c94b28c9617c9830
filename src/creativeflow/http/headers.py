"""Request headers several modules accept."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Send the same key again (with the same body) to get the same job back "
        "instead of a second one; the same key with another body is 409.",
    ),
]
