"""The cross-language vectors in tests/vectors, run through the Python evaluation core.

The vectors are the contract every SDK must pass; this is the Python SDK passing it.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from graylane.core import bucket, compile_document, evaluate, explain, parse_document
from graylane.core.evaluation import Evaluation
from graylane.core.operators import OPERATORS

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
OPTIONAL_FIELDS = ("errorCode", "rule", "bucket")
"""Fields an expectation may leave out; left out, the result must not carry them."""


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


CASE_FILES = sorted(p for p in VECTORS.glob("*.json") if "cases" in _load(p))
CASES: list[dict[str, Any]] = [case for path in CASE_FILES for case in _load(path)["cases"]]
BUCKET_TABLE: list[dict[str, Any]] = _load(VECTORS / "bucketing.json")["buckets"]


def same_json(expected: object, actual: object) -> bool:
    """JSON equality: numbers by value, but a boolean is never a number."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, int | float) or isinstance(actual, int | float):
        both = isinstance(expected, int | float) and isinstance(actual, int | float)
        return both and expected == actual
    if isinstance(expected, dict) or isinstance(actual, dict):
        return (
            isinstance(expected, dict)
            and isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(same_json(expected[k], actual[k]) for k in expected)
        )
    if isinstance(expected, list | tuple) or isinstance(actual, list | tuple):
        return (
            isinstance(expected, list | tuple)
            and isinstance(actual, list | tuple)
            and len(expected) == len(actual)
            and all(same_json(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return expected == actual


def observed(result: Evaluation) -> dict[str, object]:
    """The result in the vectors' field names."""
    return {
        "value": result.value,
        "variant": result.variant,
        "reason": str(result.reason),
        "errorCode": None if result.error_code is None else str(result.error_code),
        "rule": result.rule,
        "bucket": result.bucket,
    }


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_vector(case: dict[str, Any]) -> None:
    snapshot = compile_document(parse_document(case["document"]), case["environment"])
    result = evaluate(snapshot, case["flag"], case["context"])
    got = observed(result)
    expect = dict.fromkeys(OPTIONAL_FIELDS) | case["expect"]
    mismatches = {
        field: {"expected": want, "got": got[field]}
        for field, want in expect.items()
        if not same_json(want, got[field])
    }
    assert not mismatches, mismatches
    assert explain(snapshot, case["flag"], case["context"]).result == result


def test_bucketing_table() -> None:
    wrong = [
        {**row, "got": got}
        for row in BUCKET_TABLE
        if (got := bucket(row["salt"], row["unit"])) != row["bucket"]
    ]
    assert not wrong
    assert len(BUCKET_TABLE) >= 100


def test_case_names_are_unique_and_plentiful() -> None:
    names = [c["name"] for c in CASES]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates
    assert len(names) >= 200


def test_every_case_has_the_documented_shape() -> None:
    for case in CASES:
        assert set(case) == {"name", "document", "environment", "flag", "context", "expect"}
        assert {"value", "variant", "reason"} <= set(case["expect"])
        assert set(case["expect"]) <= {"value", "variant", "reason", *OPTIONAL_FIELDS}


def _operators_used(document: dict[str, Any]) -> set[str]:
    clauses = [
        clause
        for flag in document.get("flags", {}).values()
        for env in flag.get("environments", {}).values()
        for rule in env.get("rules", [])
        for clause in rule.get("when", [])
    ]
    clauses += [
        clause
        for segment in document.get("segments", {}).values()
        for clause in segment.get("when", [])
    ]
    return {clause["op"] for clause in clauses}


def test_every_operator_appears_in_the_vectors() -> None:
    used = set().union(*(_operators_used(c["document"]) for c in CASES))
    assert set(OPERATORS) <= used, sorted(set(OPERATORS) - used)


def test_vector_files_are_what_the_build_script_writes() -> None:
    script = VECTORS / "build_vectors.py"
    source = script.read_text(encoding="utf-8")
    assert "import graylane" not in source
    assert "from graylane" not in source
    spec = importlib.util.spec_from_file_location("build_vectors", script)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for filename, text in module.render().items():
        assert (VECTORS / filename).read_text(encoding="utf-8") == text, (
            f"{filename} is stale: run python tests/vectors/build_vectors.py"
        )
