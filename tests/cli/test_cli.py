"""The `graylane` command, run as a user runs it: a real process on real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mmh3
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "flags.yaml"
BROKEN = ROOT / "examples" / "broken.yaml"


def graylane(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from graylane.cli import main; main()", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_validate_accepts_the_example_document() -> None:
    result = graylane("validate", EXAMPLE)
    assert result.returncode == 0, result.stderr
    assert "valid (3 flags, 1 segment; environments: production, staging)" in result.stdout


def test_validate_names_every_mistake_with_its_path() -> None:
    result = graylane("validate", BROKEN)
    assert result.returncode == 1
    flag = "flags.new-checkout"
    rules = f"{flag}.environments.production.rules"
    expected = [
        f"{flag}.variants: variant values must all be of one JSON type",
        f"{flag}.off_variant: unknown variant 'of'",
        f"{rules}[0].when[0].op: unknown operator 'eqq'",
        f"{rules}[1].name: duplicate rule name 'staff'",
        f"{rules}[1].when[0].values[0]: semver_gte: expected a semantic version",
        f"{rules}[2].segment: unknown segment 'vips'",
        f"{flag}.environments.production.fallthrough.rollout.percentage: percentage 10.0005 has "
        "more than 3 decimals",
        f"{flag}.environments.production.fallthrough.rollout.variants: weights must sum to 100",
    ]
    for line in expected:
        assert line in result.stdout
    assert f"{len(expected)} problems" in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("validate", "missing.yaml"), 2, "missing.yaml: no such file"),
        (
            ("eval", EXAMPLE, "nope", "--env", "production", "--context", "{}"),
            1,
            "flag 'nope' is not in",
        ),
        (
            ("eval", EXAMPLE, "new-checkout", "--env", "prod", "--context", "{}"),
            1,
            "environment 'prod' is not configured",
        ),
        (
            ("eval", EXAMPLE, "new-checkout", "--env", "production", "--context", "{oops"),
            2,
            "--context is not valid JSON",
        ),
        (
            ("eval", EXAMPLE, "new-checkout", "--env", "production", "--context", "[1]"),
            2,
            "--context must be a JSON object",
        ),
        (
            ("eval", EXAMPLE, "new-checkout", "--env", "production"),
            2,
            "give exactly one of --context",
        ),
    ],
)
def test_mistakes_get_a_clear_message_and_exit_code(
    args: tuple[str | Path, ...], code: int, message: str
) -> None:
    result = graylane(*args)
    assert result.returncode == code
    assert message in result.stderr


def test_eval_prints_the_result_and_the_explanation() -> None:
    context = json.dumps({"targetingKey": "user-5", "email": "ana@example.com"})
    result = graylane(
        "eval", EXAMPLE, "new-checkout", "-e", "production", "--context", context, "--explain"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "  rule 'staff': MATCHED" in lines
    assert json.loads(lines[-1]) == {
        "key": "new-checkout",
        "value": True,
        "variant": "on",
        "reason": "TARGETING_MATCH",
        "rule": "staff",
    }


def _contract_bucket(salt: str, unit: str) -> int:
    return mmh3.hash(f"{salt}:{unit}", 0, signed=False) % 100_000


def test_eval_over_thousands_of_users_agrees_with_contract_2(tmp_path: Path) -> None:
    # Given 5,000 users with no targeting attributes, so the 50% split decides for all
    users = [f"user-{i}" for i in range(5_000)]
    contexts = tmp_path / "users.jsonl"
    contexts.write_text("".join(json.dumps({"targetingKey": u}) + "\n" for u in users))
    # When the command evaluates them all
    result = graylane(
        "eval", EXAMPLE, "checkout-button-color", "-e", "production", "--contexts", contexts
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    # Then every answer is the one contract 2 gives, computed here from mmh3 directly
    assert len(rows) == len(users)
    for user, row in zip(users, rows, strict=True):
        inside = _contract_bucket("checkout-button-color", user) < 50_000
        if not inside:
            expected = "blue"
        else:
            variant_bucket = _contract_bucket("checkout-button-color:variant", user)
            expected = "green" if variant_bucket < 50_000 else "orange"
        assert row["targetingKey"] == user
        assert row["variant"] == expected, user
        assert row["reason"] == "SPLIT"
    assert {row["variant"] for row in rows} == {"blue", "green", "orange"}


def test_eval_contexts_reports_bad_lines_and_keeps_the_others_aligned(tmp_path: Path) -> None:
    contexts = tmp_path / "mixed.jsonl"
    contexts.write_text('{"targetingKey": "a"}\nnot json\n\n{"targetingKey": "b"}\n')
    result = graylane("eval", EXAMPLE, "new-checkout", "-e", "production", "--contexts", contexts)
    assert result.returncode == 1
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row.get("targetingKey") for row in rows] == ["a", None, "b"]
    assert rows[1]["line"] == 2
    assert "mixed.jsonl:2 is not valid JSON" in result.stderr


# --- text and numbers no document or context may hold ----------------------------------

EVAL = ("eval", EXAMPLE, "new-checkout", "-e", "production")


def _no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr
    assert result.returncode not in (0, -11), result.stderr  # refused, and not a crash


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('{"flags": {"f": {"description": "\\ud800"}}}', "flags.f.description"),
        ('flags:\n  f:\n    description: "\\ud800"\n', "flags.f.description"),
        ('{"flags": {"f": {"variants": {"on": NaN, "off": 1}}}}', "flags.f.variants.on"),
        ('{"flags": {"f": {"variants": {"on": 1e999, "off": 1}}}}', "flags.f.variants.on"),
    ],
    ids=["json-surrogate", "yaml-surrogate", "nan", "infinity"],
)
def test_validate_refuses_unstorable_values_with_their_path(
    tmp_path: Path, text: str, path: str
) -> None:
    file = tmp_path / "flags.yaml"
    file.write_text(text)
    result = graylane("validate", file)
    _no_traceback(result)
    assert result.returncode == 1
    assert f"  {path}: " in result.stdout


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("deep.json", "[" * 100_000 + "]" * 100_000, "nests deeper than 64 levels"),
        ("deep.yaml", "a: " + "[" * 100_000, "nests deeper than 64 levels"),
        (
            "laughs.yaml",
            "a: &a [1,1,1,1,1,1,1,1,1,1]\n"
            + "".join(
                f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n"
                for i in range(6)
            ),
            "aliases expand to more than 10000 values",
        ),
    ],
)
def test_validate_refuses_nesting_and_alias_bombs_without_a_traceback(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    file = tmp_path / name
    file.write_text(text)
    result = graylane("validate", file)
    _no_traceback(result)
    assert message in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ('{"targetingKey": "\\ud800"}', "context.targetingKey: is not valid Unicode"),
        ('{"targetingKey": "u", "n": NaN}', "context.n: is not a finite number"),
        ("[" * 100_000, "nests deeper than 64 levels"),
    ],
    ids=["surrogate", "nan", "deep"],
)
def test_eval_refuses_a_context_it_cannot_evaluate(context: str, message: str) -> None:
    result = graylane(*EVAL, "--context", context)
    _no_traceback(result)
    assert result.returncode == 2
    assert message in result.stderr


def test_eval_contexts_reports_invalid_unicode_and_bytes_per_line(tmp_path: Path) -> None:
    contexts = tmp_path / "users.jsonl"
    contexts.write_bytes(
        b'{"targetingKey": "a"}\n{"targetingKey": "\\ud800"}\n{"targetingKey": "\xff"}\n'
        b'{"targetingKey": "b"}\n'
    )
    result = graylane(*EVAL, "--contexts", contexts)
    _no_traceback(result)
    assert result.returncode == 1
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row.get("targetingKey") for row in rows] == ["a", None, None, "b"]
    assert "users.jsonl:2: context.targetingKey: is not valid Unicode" in result.stderr
    assert "users.jsonl:3 is not UTF-8 text" in result.stderr
