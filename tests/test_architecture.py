"""The dependency rules of DESIGN.md, checked by import-linter (contracts in pyproject.toml):
`shared` imports no module, services and repositories never import FastAPI, and each domain
module's layers point one way (router -> service -> repository -> models)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def test_the_contracts_cover_the_design_rules() -> None:
    by_type: dict[str, list[dict[str, object]]] = {}
    for contract in _contracts():
        by_type.setdefault(str(contract["type"]), []).append(contract)
    forbidden_sources = {
        str(source)
        for contract in by_type["forbidden"]
        for source in contract["source_modules"]  # type: ignore[attr-defined]
    }
    assert "creativeflow.shared" in forbidden_sources
    assert any("service" in source for source in forbidden_sources)
    assert by_type["layers"], "no layers contract"


def test_import_contracts_hold() -> None:
    assert LINT_IMPORTS.is_file(), f"{LINT_IMPORTS} missing: install the test extra"
    result = subprocess.run(  # noqa: S603
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "0 broken" in output
    kept = output.count(" KEPT")
    assert kept == len(_contracts()), output
