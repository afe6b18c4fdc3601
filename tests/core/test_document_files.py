"""Reading documents from files: YAML keeps `on`/`off` as names and dates as text."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from graylane.core import parse_document
from graylane.core.limits import MAX_DEPTH
from graylane.documents import MAX_ALIAS_NODES, DocumentFileError, parse_text, read_document_file


def test_yaml_on_and_off_are_variant_names_not_booleans(tmp_path: Path) -> None:
    file = tmp_path / "flags.yaml"
    file.write_text(
        "flags:\n"
        "  f:\n"
        "    variants: {on: true, off: false}\n"
        "    off_variant: off\n"
        "    environments: {production: {enabled: yes, fallthrough: {variant: on}}}\n"
    )
    raw = read_document_file(file)
    assert raw["flags"]["f"]["variants"] == {"on": True, "off": False}  # type: ignore[index]
    assert raw["flags"]["f"]["off_variant"] == "off"  # type: ignore[index]
    # `yes` is not a boolean in YAML 1.2, so the validator refuses it instead of guessing
    with pytest.raises(ValueError, match=r"production\.enabled: expected true or false"):
        parse_document(raw)


def test_yaml_dates_stay_text_for_the_date_operators(tmp_path: Path) -> None:
    file = tmp_path / "flags.yml"
    file.write_text("when: [{attribute: signup, op: after, values: [2026-01-01T00:00:00Z]}]\n")
    raw = read_document_file(file)
    assert raw == {
        "when": [{"attribute": "signup", "op": "after", "values": ["2026-01-01T00:00:00Z"]}]
    }


def test_a_json_file_is_read_as_json_only(tmp_path: Path) -> None:
    file = tmp_path / "flags.json"
    file.write_text("flags: {}\n")
    with pytest.raises(DocumentFileError, match=r"flags\.json: not valid JSON"):
        read_document_file(file)


def test_unreadable_files_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(DocumentFileError, match="no such file"):
        read_document_file(tmp_path / "missing.yaml")
    with pytest.raises(DocumentFileError, match="is a directory"):
        read_document_file(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("flags: [unclosed\n")
    with pytest.raises(DocumentFileError, match="not valid JSON or YAML"):
        read_document_file(bad)


# --- limits: what a file may not hold ---------------------------------------------------

BILLION_LAUGHS = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
)


def test_yaml_aliases_that_expand_beyond_the_limit_are_refused() -> None:
    with pytest.raises(DocumentFileError) as refused:
        parse_text(BILLION_LAUGHS)
    assert f"aliases expand to more than {MAX_ALIAS_NODES} values" in str(refused.value)
    assert refused.value.problems[0].path == "line 5, column 8"


def test_yaml_aliases_within_the_limit_are_read() -> None:
    text = (
        "shared: &staff [{attribute: email, op: ends_with, values: ['@example.com']}]\n"
        "a: {when: *staff}\n"
        "b: {<<: {x: 1}, when: *staff}\n"
    )
    data: Any = parse_text(text)
    assert data["a"]["when"] == data["shared"]
    assert data["b"] == {"x": 1, "when": data["shared"]}


def test_a_yaml_alias_to_itself_is_refused() -> None:
    with pytest.raises(DocumentFileError, match=r"alias \*x refers to itself"):
        parse_text("x: &x [*x]")


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000 + "]" * 100_000, "a: " + "[" * 100_000],
    ids=["json", "yaml"],
)
def test_nesting_100000_levels_deep_is_refused_not_a_recursion_error(text: str) -> None:
    with pytest.raises(DocumentFileError, match=f"nests deeper than {MAX_DEPTH} levels"):
        parse_text(text)


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        ('{"v": NaN}', "v", "not a finite number"),
        ("v: .inf", "v", "not a finite number"),
        ('{"flags": {"f": {"description": "\\ud800"}}}', "flags.f.description", "not valid"),
        ('v: "\\ud800"', "v", "not valid Unicode"),
        ('{"n": 99999999999999999999}', "n", "signed 64-bit"),
        ("k: !!binary aGVsbG8=", "k", "not a JSON value (bytes)"),
        ('{"k": "a\\u0000b"}', "k", "NUL"),
    ],
)
def test_loaded_data_is_held_to_the_edge_limits(text: str, path: str, message: str) -> None:
    with pytest.raises(DocumentFileError) as refused:
        parse_text(text)
    assert [p.path for p in refused.value.problems] == [path]
    assert message in refused.value.problems[0].message
    str(refused.value).encode("utf-8")


def test_reading_yaml_without_pyyaml_says_how_to_install_it(tmp_path: Path) -> None:
    # Given the bare SDK, where `import yaml` fails
    file = tmp_path / "flags.yaml"
    file.write_text("flags:\n  f: {}\n")
    script = (
        "import sys\n"
        "sys.modules['yaml'] = None\n"
        "from graylane import Client\n"
        "from graylane.documents import DocumentFileError\n"
        "try:\n"
        f"    Client.from_file({str(file)!r})\n"
        "except DocumentFileError as exc:\n"
        "    print(exc)\n"
    )
    # When a client reads a YAML file
    run = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True
    )
    # Then it is told how to get YAML support, not shown a ModuleNotFoundError
    assert run.returncode == 0, run.stderr
    assert "reading YAML needs PyYAML: pip install 'graylane[cli]'" in run.stdout
    assert "Traceback" not in run.stderr
