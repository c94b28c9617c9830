"""The web family's servers, one per module that uses them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.datasources.web.rest_app import RestApi
from tests.providers.fake_servers import serve_app


@pytest.fixture(scope="module")
def api() -> Iterator[RestApi]:
    """The REST app (and OAuth2 token endpoint) on 127.0.0.1."""
    state = RestApi()
    with serve_app(state.app()) as base_url:
        state.base_url = base_url
        yield state


@pytest.fixture(scope="module")
def other_api() -> Iterator[RestApi]:
    """A second one, on another port: another host to redirect to."""
    state = RestApi()
    with serve_app(state.app()) as base_url:
        state.base_url = base_url
        yield state
