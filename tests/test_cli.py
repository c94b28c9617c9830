"""The `creativeflow` command, run as an operator runs it: the installed console script in a
process of its own, with DATA_DIR pointing at an empty directory and no DATABASE_URL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from creativeflow.app import create_app
from creativeflow.platform import build_platform
from creativeflow.settings import Environment, Settings

COMMAND = Path(sys.executable).with_name("creativeflow")
PASSWORD = "Correct-Horse-42!"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def cli_env(tmp_path: Path, data_dir: Path) -> dict[str, str]:
    """The machine's environment without any CreativeFlow setting, plus DATA_DIR."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name.lower() not in Settings.model_fields and not name.startswith("TEST_")
    }
    env["DATA_DIR"] = str(data_dir)
    env["LOG_LEVEL"] = "WARNING"
    return env


def run(
    env: dict[str, str], cwd: Path, *args: str, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    # A new session has no controlling terminal, so password prompts read stdin.
    return subprocess.run(  # noqa: S603
        [str(COMMAND), *args],
        env=env,
        cwd=cwd,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
        check=False,
    )


def test_the_console_script_is_installed() -> None:
    assert COMMAND.is_file(), f"{COMMAND} missing: pip install -e . into the venv"


def test_db_upgrade_current_downgrade(
    cli_env: dict[str, str], tmp_path: Path, data_dir: Path
) -> None:
    result = run(cli_env, tmp_path, "db", "current")
    assert result.returncode == 1, result.stderr  # nothing applied yet
    assert "(empty database)" in result.stdout

    result = run(cli_env, tmp_path, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert (data_dir / "creativeflow.db").is_file()

    result = run(cli_env, tmp_path, "db", "current")
    assert result.returncode == 0, result.stderr
    current, head = _revisions(result.stdout)
    assert current == head != "(empty database)"

    result = run(cli_env, tmp_path, "db", "downgrade", "base")
    assert result.returncode == 0, result.stderr

    result = run(cli_env, tmp_path, "db", "current")
    assert result.returncode == 1
    assert _revisions(result.stdout) == ("(empty database)", head)

    assert run(cli_env, tmp_path, "db", "upgrade").returncode == 0
    assert run(cli_env, tmp_path, "db", "current").returncode == 0


async def test_create_admin_makes_a_user_who_can_sign_in_as_admin(
    cli_env: dict[str, str], tmp_path: Path, data_dir: Path
) -> None:
    assert run(cli_env, tmp_path, "db", "upgrade").returncode == 0
    result = run(
        cli_env, tmp_path,
        "users", "create-admin",
        "--email", "owner@example.com",
        "--username", "site-owner",
        "--name", "Site Owner",
        "--password", PASSWORD,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "site-owner" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr

    me = await _sign_in(data_dir, "owner@example.com", PASSWORD)
    assert me["username"] == "site-owner"
    assert "admin" in me["roles"]

    again = run(
        cli_env, tmp_path,
        "users", "create-admin",
        "--email", "other@example.com",
        "--username", "site-owner",
        "--name", "Someone Else",
        "--password", PASSWORD,
    )  # fmt: skip
    assert again.returncode != 0
    assert "taken" in again.stderr.lower()


def test_create_admin_refuses_a_weak_password(cli_env: dict[str, str], tmp_path: Path) -> None:
    assert run(cli_env, tmp_path, "db", "upgrade").returncode == 0
    result = run(
        cli_env, tmp_path,
        "users", "create-admin",
        "--email", "owner@example.com",
        "--username", "site-owner",
        "--name", "Site Owner",
        "--password", "password",
    )  # fmt: skip
    assert result.returncode == 2
    assert "password" in result.stderr
    assert "12 characters" in result.stderr
    assert "Traceback" not in result.stderr


async def test_create_admin_prompts_for_the_password_twice(
    cli_env: dict[str, str], tmp_path: Path, data_dir: Path
) -> None:
    assert run(cli_env, tmp_path, "db", "upgrade").returncode == 0
    result = run(
        cli_env, tmp_path,
        "users", "create-admin",
        "--email", "prompted@example.com",
        "--username", "prompted",
        "--name", "Prompted Admin",
        stdin=f"{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Repeat for confirmation" in result.stdout + result.stderr
    me = await _sign_in(data_dir, "prompted", PASSWORD)
    assert "admin" in me["roles"]


def test_create_admin_prompt_refuses_a_mismatched_confirmation(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    assert run(cli_env, tmp_path, "db", "upgrade").returncode == 0
    result = run(
        cli_env, tmp_path,
        "users", "create-admin",
        "--email", "prompted@example.com",
        "--username", "prompted",
        "--name", "Prompted Admin",
        stdin=f"{PASSWORD}\nSomething-Else-42!\n",
    )  # fmt: skip
    assert result.returncode != 0
    assert "created admin" not in result.stdout


def test_openapi_prints_the_document(cli_env: dict[str, str], tmp_path: Path) -> None:
    result = run(cli_env, tmp_path, "openapi")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "CreativeFlow API"
    assert "/api/v1/auth/login" in document["paths"]
    assert "/health" in document["paths"]


def test_serve_migrates_answers_and_stops_on_sigterm(
    cli_env: dict[str, str], tmp_path: Path, data_dir: Path
) -> None:
    port = _free_port()
    log = (tmp_path / "serve.log").open("w+")
    process = subprocess.Popen(  # noqa: S603
        [str(COMMAND), "serve", "--port", str(port)],
        env={**cli_env, "LOG_LEVEL": "INFO"},
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        health = _wait_for_health(process, port, deadline=time.monotonic() + 60)
        assert health.status_code == 200, health.text
        assert health.json()["services"]["database"] == "connected"
        assert health.headers["x-correlation-id"]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            assert client.get("/api/v1/auth/me").status_code == 401
        assert (data_dir / "creativeflow.db").is_file()

        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal so a supervisor sees why
        # the process ended: -SIGTERM is a clean stop, as is 0.
        assert process.wait(timeout=20) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        log.seek(0)
        output = log.read()
        log.close()

    # Migrations were applied before serving.
    result = run(cli_env, tmp_path, "db", "current")
    assert result.returncode == 0, result.stdout + output
    # Server logs are JSON lines too, including uvicorn's own.
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(line.get("path") == "/health" and line.get("status") == 200 for line in lines)
    events = [line.get("event") for line in lines]
    assert "Application shutdown complete." in events, output


def test_serve_with_workers_reports_every_workers_metrics(
    cli_env: dict[str, str], tmp_path: Path, data_dir: Path
) -> None:
    """With several workers, a scrape reaches one of them and still counts every request;
    the previous run's metric files are removed at start."""
    stale = data_dir / "metrics" / "counter_1.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left by an earlier run")
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603
        [str(COMMAND), "serve", "--port", str(port), "--workers", "2"],
        env=cli_env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for_health(process, port, deadline=time.monotonic() + 60)
        base = f"http://127.0.0.1:{port}"
        for _ in range(40):  # a connection each, so either worker may take it
            assert httpx.get(f"{base}/api/v1/health/live", timeout=5).status_code == 200

        def live_count() -> float:
            text = httpx.get(f"{base}/metrics", timeout=5).text
            samples = [
                line.rsplit(" ", 1)[1]
                for line in text.splitlines()
                if line.startswith("creativeflow_http_requests_total{")
                and 'route="/api/v1/health/live"' in line
            ]
            return sum(float(value) for value in samples)

        deadline = time.monotonic() + 10  # each worker counts a request once it has answered
        while live_count() != 40 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [live_count() for _ in range(6)] == [40.0] * 6
        assert not stale.exists()
        assert list((data_dir / "metrics").glob("*.db"))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_serve_in_production_without_settings_names_what_is_missing(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    result = run(
        {**cli_env, "ENVIRONMENT": "production"}, tmp_path, "serve", "--port", str(_free_port())
    )
    assert result.returncode != 0
    for name in ("SECRET_KEY", "DATABASE_URL", "ALLOWED_ORIGINS"):
        assert name in result.stderr
    assert "Traceback" not in result.stderr


def test_an_invalid_setting_is_reported_without_a_traceback(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    result = run({**cli_env, "ENVIRONMENT": "staging"}, tmp_path, "db", "current")
    assert result.returncode == 2
    assert "ENVIRONMENT" in result.stderr
    assert "Traceback" not in result.stderr


# --- helpers ----------------------------------------------------------------------------------


def _revisions(output: str) -> tuple[str, str]:
    values = dict(
        line.split(":", 1) for line in output.splitlines() if line.startswith(("current", "head"))
    )
    return values["current"].strip(), values["head"].strip()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_health(
    process: subprocess.Popen[bytes], port: int, deadline: float
) -> httpx.Response:
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited early with {process.returncode}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
        except httpx.TransportError as exc:
            last_error = exc
            time.sleep(0.2)
    raise AssertionError(f"serve did not answer /health in time: {last_error}")


async def _sign_in(data_dir: Path, login: str, password: str) -> dict[str, Any]:
    """Log in through the application, on the database the command wrote."""
    settings = Settings.model_validate(
        {"environment": Environment.TEST, "data_dir": data_dir, "log_level": "WARNING"}
    )
    platform = build_platform(settings)
    try:
        app = create_app(settings, platform=platform)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cli-test") as client:
            tokens = await client.post(
                "/api/v1/auth/login", json={"login": login, "password": password}
            )
            assert tokens.status_code == 200, tokens.text
            me = await client.get(
                "/api/v1/auth/me",
                headers={"Authorization": f"Bearer {tokens.json()['access_token']}"},
            )
            assert me.status_code == 200, me.text
            body: dict[str, Any] = me.json()
            return body
    finally:
        await platform.close()
