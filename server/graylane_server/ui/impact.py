"""What a change would do before it is saved: how many units of a sample would get a
different answer, computed by the same core every SDK evaluates with."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graylane.core import Context, Snapshot, compile_document, parse_document, resolve

SAMPLE_SIZE = 10_000
NOTHING = "(no flag)"


@dataclass(frozen=True, slots=True)
class Move:
    before: str
    after: str
    count: int


@dataclass(frozen=True, slots=True)
class FlagImpact:
    flag: str
    environment: str
    changed: int
    total: int
    moves: tuple[Move, ...]
    """Who goes from which variant to which, most first."""

    @property
    def share(self) -> float:
        return self.changed / self.total if self.total else 0.0


@dataclass(frozen=True, slots=True)
class Impact:
    sample: str
    """What was evaluated, in words."""
    rows: tuple[FlagImpact, ...]

    @property
    def changed(self) -> int:
        return sum(row.changed for row in self.rows)


def synthetic_contexts(size: int = SAMPLE_SIZE) -> list[dict[str, Any]]:
    return [{"targetingKey": f"sample-{i}"} for i in range(size)]


def _snapshots(raw: Mapping[str, Any], environments: Iterable[str]) -> dict[str, Snapshot]:
    document = parse_document(raw)
    return {env: compile_document(document, env) for env in environments}


def _answer(snapshot: Snapshot, flag: str, context: Context) -> tuple[str, str]:
    result = resolve(snapshot, flag, context)
    if result.variant is None:
        return NOTHING, ""
    return result.variant, repr(result.value)


def compare(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any],
    flags: Sequence[str],
    environments: Sequence[str],
    contexts: list[dict[str, Any]] | None = None,
) -> Impact:
    """Evaluate `flags` in every environment under two valid documents (`before` None: the
    flags do not exist yet) for the pasted `contexts`, or for SAMPLE_SIZE synthetic
    targeting keys, and count the answers that differ."""
    sample = contexts if contexts else synthetic_contexts()
    described = (
        f"{len(sample):,} pasted context{'s' if len(sample) != 1 else ''}"
        if contexts
        else f"{len(sample):,} synthetic targeting keys"
    )
    old = _snapshots(before, environments) if before is not None else None
    new = _snapshots(after, environments)
    rows = []
    for env in environments:
        for flag in flags:
            moves: Counter[tuple[str, str]] = Counter()
            for context in sample:
                was = _answer(old[env], flag, context) if old is not None else (NOTHING, "")
                now = _answer(new[env], flag, context)
                if was != now:
                    moves[(was[0], now[0])] += 1
            rows.append(
                FlagImpact(
                    flag=flag,
                    environment=env,
                    changed=sum(moves.values()),
                    total=len(sample),
                    moves=tuple(Move(b, a, n) for (b, a), n in moves.most_common()),
                )
            )
    return Impact(sample=described, rows=tuple(rows))
