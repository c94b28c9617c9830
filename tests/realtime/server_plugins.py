"""Imported by the `creativeflow serve` and `worker` processes of these tests (JOB_MODULES):
the test job kinds and the `tests.profile` subject type."""

from __future__ import annotations

import tests.jobs.sample_kinds  # noqa: F401  (registers the test kinds)
from tests.realtime.subjects import register_profiles

register_profiles()
