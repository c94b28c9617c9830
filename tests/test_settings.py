"""Settings: one typed object from the environment (and `.env`), strict in production, zero
setup in development."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import combinations
from pathlib import Path

import pytest

from creativeflow.db import migrate
from creativeflow.platform import build_platform
from creativeflow.settings import ConfigurationError, Environment, Settings, get_settings

REQUIRED_IN_PRODUCTION = {
    "SECRET_KEY": "k" * 48,
    "DATABASE_URL": "postgresql+asyncpg://app:secret@db.internal:5432/creativeflow",
    "ALLOWED_ORIGINS": "https://app.example.com",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No setting leaks in from the machine: no variables, no `.env` in the working directory."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


# --- production -------------------------------------------------------------------------------


def test_production_without_its_settings_names_every_missing_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(ConfigurationError) as excinfo:
        Settings()
    message = str(excinfo.value)
    for name in REQUIRED_IN_PRODUCTION:
        assert name in message


@pytest.mark.parametrize(
    "provided",
    [
        set(subset)
        for size in range(len(REQUIRED_IN_PRODUCTION))
        for subset in combinations(sorted(REQUIRED_IN_PRODUCTION), size)
    ],
    ids=lambda provided: "+".join(sorted(provided)) or "nothing",
)
def test_production_names_exactly_the_missing_settings(
    monkeypatch: pytest.MonkeyPatch, provided: set[str]
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    for name in provided:
        monkeypatch.setenv(name, REQUIRED_IN_PRODUCTION[name])
    with pytest.raises(ConfigurationError) as excinfo:
        Settings()
    message = str(excinfo.value)
    for name in REQUIRED_IN_PRODUCTION:
        assert (name in message) is (name not in provided), (name, message)


def test_empty_values_count_as_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """`SECRET_KEY=` copied from .env.example is not a key."""
    monkeypatch.setenv("ENVIRONMENT", "production")
    for name, value in REQUIRED_IN_PRODUCTION.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SECRET_KEY", "")
    monkeypatch.setenv("ALLOWED_ORIGINS", " , ")
    with pytest.raises(ConfigurationError) as excinfo:
        Settings()
    assert "SECRET_KEY" in str(excinfo.value)
    assert "ALLOWED_ORIGINS" in str(excinfo.value)
    assert "DATABASE_URL" not in str(excinfo.value)


def test_production_refuses_a_short_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    for name, value in REQUIRED_IN_PRODUCTION.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SECRET_KEY", "changethis")
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        Settings()


def test_production_with_its_settings_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "PRODUCTION")
    for name, value in REQUIRED_IN_PRODUCTION.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.environment is Environment.PRODUCTION
    assert settings.is_production
    assert settings.signing_key() == REQUIRED_IN_PRODUCTION["SECRET_KEY"]
    assert settings.resolved_database_url() == REQUIRED_IN_PRODUCTION["DATABASE_URL"]
    # The key never shows up in a repr or a dump.
    assert REQUIRED_IN_PRODUCTION["SECRET_KEY"] not in repr(settings)
    assert REQUIRED_IN_PRODUCTION["SECRET_KEY"] not in str(settings.model_dump())


def test_settings_come_from_a_dotenv_file_too() -> None:
    Path(".env").write_text("LOG_LEVEL=debug\nALLOWED_ORIGINS=https://from-dotenv.example\n")
    settings = Settings()
    assert settings.log_level == "DEBUG"
    assert settings.allowed_origins == ["https://from-dotenv.example"]


# --- development: the generated signing key ---------------------------------------------------


def test_development_generates_a_key_once_into_the_data_dir(tmp_path: Path) -> None:
    settings = Settings()
    assert settings.secret_key is None
    key = settings.signing_key()
    key_file = tmp_path / "data" / "secret_key"
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().strip() == key
    assert len(key) >= 32

    # The next start (a new Settings object) reuses it, so issued tokens stay valid.
    assert Settings().signing_key() == key
    assert settings.signing_key() == key
    assert [p.name for p in key_file.parent.iterdir() if "secret_key" in p.name] == ["secret_key"]


def test_each_data_dir_gets_its_own_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    first = Settings().signing_key()
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "other"))
    assert Settings().signing_key() != first


def test_an_explicit_secret_key_writes_no_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    assert Settings().signing_key() == "s" * 40
    assert not (tmp_path / "data" / "secret_key").exists()


def test_workers_starting_together_share_one_key() -> None:
    settings = Settings()
    barrier = threading.Barrier(8)

    def start_worker() -> str:
        barrier.wait()
        return Settings().signing_key()

    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = list(pool.map(lambda _: start_worker(), range(8)))
    assert len(set(keys)) == 1
    assert settings.signing_key() == keys[0]


def test_an_unusable_key_file_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "data" / "secret_key"
    key_file.parent.mkdir(parents=True)
    key_file.write_text("\n")
    with pytest.raises(ConfigurationError, match="secret_key"):
        Settings().signing_key()


# --- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://app.example.com", ["https://app.example.com"]),
        (
            "https://app.example.com,http://localhost:3000",
            ["https://app.example.com", "http://localhost:3000"],
        ),
        (
            " https://app.example.com , http://localhost:3000 ,",
            ["https://app.example.com", "http://localhost:3000"],
        ),
        ("https://app.example.com/", ["https://app.example.com"]),
        (
            '["https://app.example.com", "http://localhost:3000"]',
            ["https://app.example.com", "http://localhost:3000"],
        ),
        ("", []),
    ],
)
def test_allowed_origins_are_comma_separated(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: list[str]
) -> None:
    monkeypatch.setenv("ALLOWED_ORIGINS", raw)
    assert Settings().allowed_origins == expected


def test_allowed_origins_accept_a_list_in_code() -> None:
    settings = Settings(allowed_origins=["https://a.example", "https://b.example/"])
    assert settings.allowed_origins == ["https://a.example", "https://b.example"]


def test_values_are_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("ACCESS_TOKEN_EXPIRE_MINUTES", "15")
    monkeypatch.setenv("environment", "test")
    settings = Settings()
    assert settings.log_level == "DEBUG"
    assert settings.access_token_expire_minutes == 15
    assert settings.environment is Environment.TEST


def test_get_settings_is_cached_and_can_be_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    first = get_settings()
    assert get_settings() is first
    monkeypatch.setenv("LOG_LEVEL", "ERROR")
    assert get_settings().log_level == first.log_level
    get_settings.cache_clear()
    assert get_settings().log_level == "ERROR"


# --- the data directory -----------------------------------------------------------------------


async def test_first_run_creates_the_data_dir_with_the_database_in_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data_dir = tmp_path / "fresh" / "nested" / "data"
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    settings = Settings()
    assert not data_dir.exists()

    url = settings.resolved_database_url()
    assert url == f"sqlite+aiosqlite:///{(data_dir / 'creativeflow.db').resolve()}"

    platform = build_platform(settings)
    try:
        assert data_dir.is_dir()
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        migrate.upgrade(url)
        assert (data_dir / "creativeflow.db").is_file()
        assert (data_dir / "secret_key").is_file()
    finally:
        await platform.close()
    assert {p.name for p in data_dir.iterdir()} <= {
        "creativeflow.db",
        "creativeflow.db-wal",
        "creativeflow.db-shm",
        "secret_key",
    }


def test_a_relative_data_dir_is_resolved_against_the_working_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATA_DIR", "./var")
    url = Settings().resolved_database_url()
    assert url == f"sqlite+aiosqlite:///{Path(os.getcwd(), 'var', 'creativeflow.db')}"


def test_a_wildcard_origin_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="ALLOWED_ORIGINS"):
        Settings(allowed_origins="*")  # type: ignore[arg-type]
