"""`graylane-server` where only the SDK is installed (`pip install graylane`): it says how to
install the server, as `graylane` does for its own extra, instead of a traceback. Run in a
process that hides the server's packages, the way a machine without them would."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from graylane_server.cli import SERVER_MODULES

ROOT = Path(__file__).resolve().parents[2]
HINT = "pip install 'graylane[server]'"

SCRIPT = """
import sys
for name in {hidden!r}:
    sys.modules[name] = None  # as if not installed: importing it raises ModuleNotFoundError
sys.argv = ["graylane-server", *{args!r}]
{entry}
"""
CONSOLE_SCRIPT = "from graylane_server.cli import main\nsys.exit(main())"
PYTHON_M = "import runpy\nrunpy.run_module('graylane_server', run_name='__main__')"


def run(
    hidden: tuple[str, ...], args: tuple[str, ...], entry: str
) -> subprocess.CompletedProcess[str]:
    code = SCRIPT.format(hidden=hidden, args=args, entry=entry)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("entry", [CONSOLE_SCRIPT, PYTHON_M], ids=["console-script", "python-m"])
@pytest.mark.parametrize("args", [("serve",), ("token", "create", "--sdk", "--env", "x"), ()])
def test_without_the_server_extra_the_command_says_what_to_install(
    entry: str, args: tuple[str, ...]
) -> None:
    done = run(SERVER_MODULES, args, entry)

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert HINT in done.stderr
    assert "missing: alembic, argon2, fastapi" in done.stderr
    assert done.stdout == ""


def test_one_missing_package_is_named_even_when_the_command_would_not_import_it() -> None:
    # `serve` needs FastAPI only once uvicorn builds the app: too late for a clear word
    done = run(("fastapi",), ("serve",), CONSOLE_SCRIPT)

    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"(missing: fastapi): {HINT}" in done.stderr


def test_with_the_server_extra_the_command_runs() -> None:
    done = run((), ("--help",), CONSOLE_SCRIPT)

    assert done.returncode == 0, done.stderr
    assert "serve" in done.stdout
    assert HINT not in done.stderr


def test_the_checked_modules_cover_every_package_of_the_server_extra() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    wanted = {
        _distribution(requirement)
        for requirement in extras["server"] + extras["cli"]
        if not requirement.startswith("graylane[")
    }
    checked = {
        dist.lower().replace("_", "-")
        for module in SERVER_MODULES
        for dist in packages_distributions().get(module, [])
    }
    assert wanted - checked == set()


def _distribution(requirement: str) -> str:
    """The distribution a requirement names (`uvicorn[standard]>=0.30` -> `uvicorn`)."""
    found = re.match(r"[A-Za-z0-9_.-]+", requirement)
    assert found is not None, requirement
    return found.group().lower().replace("_", "-")
