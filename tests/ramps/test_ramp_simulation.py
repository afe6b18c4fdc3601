"""The ramp simulation's quick mode runs the server's own guards and decision on the
rows that need little traffic to decide, and every goal holds in them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).parents[2] / "bench" / "ramp_simulation.py"


def simulation() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ramp_simulation", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("rows", ["warn x5", "x20/0.01/1000", "mid-50% x2/0.01"])
def test_quick_simulation_meets_every_goal(rows: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert simulation().main(["--quick", "--jobs", "1", "--only", rows]) == 0
    out = capsys.readouterr().out
    assert "every goal met in every row" in out
    assert rows in out
