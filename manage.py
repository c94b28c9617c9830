#!/usr/bin/env python3
"""The two commands of the README, on any machine that has Python 3.11+.

    python3 manage.py run    install what is needed, then serve on the embedded defaults
    python3 manage.py test   install what is needed, then lint and run the whole test suite

Both create `.venv/` beside this file on first use and re-install only when pyproject.toml
changes. Extra arguments go to `creativeflow serve` or to pytest.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".creativeflow-installed"


def ensure_installed(extras: str) -> None:
    if sys.version_info < (3, 11):
        sys.exit("CreativeFlow needs Python 3.11 or newer")
    if not PYTHON.exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest() + ":" + extras
    installed = STAMP.read_text().split() if STAMP.exists() else []
    if wanted in installed or (extras == "" and any(x.startswith(wanted) for x in installed)):
        return
    print(f"installing creativeflow{extras} into .venv ...", flush=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run(
        [str(PYTHON), "-m", "pip", "install", "--quiet", "-e", f".{extras}"], cwd=ROOT, check=True
    )
    STAMP.write_text("\n".join([*installed, wanted]))


def run(args: list[str]) -> int:
    ensure_installed("")
    return subprocess.call([str(BIN / "creativeflow"), "serve", *args], cwd=ROOT)


def test(args: list[str]) -> int:
    ensure_installed("[test]")
    checks = [
        [str(BIN / "ruff"), "check", "src", "tests", "bench", "manage.py"],
        [str(BIN / "ruff"), "format", "--check", "src", "tests", "bench", "manage.py"],
        [str(BIN / "mypy"), "src"],
    ]
    for check in checks:
        print(
            "$",
            " ".join(Path(check[0]).name if i == 0 else a for i, a in enumerate(check)),
            flush=True,
        )
        if subprocess.call(check, cwd=ROOT) != 0:
            return 1
    return subprocess.call([str(PYTHON), "-m", "pytest", *args], cwd=ROOT)


def main() -> int:
    commands = {"run": run, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
