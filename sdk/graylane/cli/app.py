"""Commands of the `graylane` tool."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from graylane.core import (
    Document,
    DocumentError,
    Problem,
    Snapshot,
    compile_document,
    evaluate,
    explain,
    parse_document,
)
from graylane.core.limits import MAX_DEPTH, context_problems
from graylane.documents import DocumentFileError, DocumentLimitError, read_document_file

app = typer.Typer(
    help="Validate Graylane flag documents and evaluate flags offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_INVALID = 1
"""The document is invalid (including text that is not valid Unicode, NaN, nesting beyond
the limits), or names no such flag or environment."""
EXIT_USAGE = 2
"""A file is missing or unreadable, or an argument is malformed."""


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _load(file: Path) -> Document:
    try:
        raw = read_document_file(file)
        return parse_document(raw)
    except DocumentLimitError as exc:
        _problems(file, exc.problems)
        raise typer.Exit(EXIT_INVALID) from exc
    except DocumentFileError as exc:
        _fail(str(exc))
    except DocumentError as exc:
        _problems(file, exc.problems)
        raise typer.Exit(EXIT_INVALID) from exc


def _problems(file: Path, problems: Sequence[Problem]) -> None:
    count = len(problems)
    typer.echo(f"{file}: {count} problem{'s' if count != 1 else ''}")
    for problem in problems:
        typer.echo(f"  {problem}")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="Flag document, JSON or YAML.")],
) -> None:
    """Check a flag document; list every problem with its path."""
    document = _load(file)
    envs = ", ".join(document.environments) or "none"
    typer.echo(
        f"{file}: valid ({_plural(len(document.flags), 'flag')}, "
        f"{_plural(len(document.segments), 'segment')}; environments: {envs})"
    )


def _parse_context(text: str, where: str) -> dict[str, object]:
    try:
        context = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where} is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise ValueError(f"{where}: context nests deeper than {MAX_DEPTH} levels") from exc
    if not isinstance(context, dict):
        raise ValueError(f'{where} must be a JSON object, like {{"targetingKey": "user-1"}}')
    problems = context_problems(context)
    if problems:
        raise ValueError(f"{where}: " + "; ".join(map(str, problems)))
    return context


def _snapshot(document: Document, file: Path, flag: str, environment: str) -> Snapshot:
    if flag not in document.flags:
        known = ", ".join(sorted(document.flags)) or "none"
        _fail(f"flag {flag!r} is not in {file} (flags: {known})", EXIT_INVALID)
    if environment not in document.environments:
        known = ", ".join(document.environments) or "none"
        _fail(
            f"environment {environment!r} is not configured in {file} (environments: {known})",
            EXIT_INVALID,
        )
    return compile_document(document, environment)


@app.command("eval")
def eval_(  # noqa: PLR0917 - typer maps each option to a parameter
    file: Annotated[Path, typer.Argument(help="Flag document, JSON or YAML.")],
    flag: Annotated[str, typer.Argument(help="Key of the flag to evaluate.")],
    env: Annotated[str, typer.Option("--env", "-e", help="Environment to evaluate in.")],
    context: Annotated[
        str | None, typer.Option(help='Context as JSON, e.g. \'{"targetingKey": "user-1"}\'.')
    ] = None,
    contexts: Annotated[
        Path | None,
        typer.Option(help="JSON Lines file, one context per line; prints one result per line."),
    ] = None,
    explain_: Annotated[
        bool, typer.Option("--explain", help="Also print why: every rule, clause and bucket.")
    ] = False,
) -> None:
    """Evaluate a flag for one context, or for every context in a JSON Lines file."""
    if (context is None) == (contexts is None):
        _fail("give exactly one of --context JSON or --contexts FILE.jsonl")
    document = _load(file)
    snapshot = _snapshot(document, file, flag, env)
    if context is not None:
        try:
            ctx = _parse_context(context, "--context")
        except ValueError as exc:
            _fail(str(exc))
        if explain_:
            for line in explain(snapshot, flag, ctx).lines():
                typer.echo(line)
        typer.echo(json.dumps(evaluate(snapshot, flag, ctx).to_dict(), ensure_ascii=False))
        return
    assert contexts is not None
    _eval_lines(snapshot, flag, contexts, with_explain=explain_)


def _decode(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{where} is not UTF-8 text: {exc.reason} at byte {exc.start}") from exc


def _eval_lines(snapshot: Snapshot, flag: str, path: Path, *, with_explain: bool) -> None:
    """One output line per non-blank input line, in order, so results line up with users."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        _fail(f"{path}: cannot read: {exc.strerror or exc}")
    bad = 0
    out = sys.stdout
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                line = _decode(raw, f"{path}:{number}")
                ctx = _parse_context(line, f"{path}:{number}")
            except ValueError as exc:
                bad += 1
                typer.echo(f"error: {exc}", err=True)
                out.write(json.dumps({"line": number, "error": str(exc)}) + "\n")
                continue
            result: dict[str, object] = {"targetingKey": ctx.get("targetingKey")}
            result.update(evaluate(snapshot, flag, ctx).to_dict())
            if with_explain:
                result["explain"] = explain(snapshot, flag, ctx).to_dict()
            out.write(json.dumps(result, ensure_ascii=False) + "\n")
    if bad:
        _fail(f"{_plural(bad, 'line')} of {path} could not be read", EXIT_INVALID)
