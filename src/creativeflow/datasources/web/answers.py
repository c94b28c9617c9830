"""HTTP answers for the web types: read whole up to MAX_RESPONSE_BYTES (looked up on every
request), their statuses as `SourceError`s. The answers themselves and the status mapping are
the guarded transport's (`datasources.http`); they are importable here too."""

from __future__ import annotations

from creativeflow.datasources.http import Answer, origin, shown_url, status_error

__all__ = ["MAX_RESPONSE_BYTES", "Answer", "origin", "shown_url", "status_error"]

MAX_RESPONSE_BYTES = 16 * 1024 * 1024
