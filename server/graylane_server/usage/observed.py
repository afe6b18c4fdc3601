"""Usage buckets read back as `Observations`: what guards see of a flag's traffic."""

from __future__ import annotations

from decimal import Decimal

from graylane_server.ramps.observations import CLUSTERS, REQUEST, Group, Observations, Series, Slice
from graylane_server.usage.series import UNTIL, parse_observed
from graylane_server.usage.store import Fields

GUARDED = frozenset({"exposed", "unexposed"})
_KIND = {"o": 0, "s": 1, "q": 2}

Cells = dict[str, dict[str, list[list[float]]]]
"""group -> event -> [counts, excess of sums, excess of squares], each per cluster."""


def observations_of(fields: Fields) -> Observations:
    cells: dict[tuple[int, Decimal], Cells] = {}
    names: dict[str, tuple[int, Decimal, str, str] | None] = {}
    reported_until: float | None = None
    unattributed = 0
    for bucket, values in fields.items():
        for name, value in values.items():
            if isinstance(value, list):
                if name not in names:  # a handful of distinct names: parse each once
                    parsed = parse_observed(name)
                    names[name] = None if parsed is None else (_KIND[parsed[0]], *parsed[1:])
                known = names[name]
                if known is None or known[2] not in GUARDED or len(value) != CLUSTERS:
                    continue
                kind, percentage, group, event = known
                groups = cells.setdefault((bucket, percentage), {})
                series = groups.setdefault(group, {}).get(event)
                if series is None:
                    series = groups[group][event] = [[0.0] * CLUSTERS for _ in range(3)]
                series[kind] = value
            elif name == UNTIL:
                reported_until = value if reported_until is None else max(reported_until, value)
            elif name.startswith("x|"):
                _, group, event = name.split("|", 2)
                if event == REQUEST and group in GUARDED:
                    unattributed += int(value)
    slices = tuple(
        Slice(
            start=float(bucket),
            percentage=percentage,
            exposed=_group(groups.get("exposed", {})),
            unexposed=_group(groups.get("unexposed", {})),
        )
        for (bucket, percentage), groups in sorted(cells.items())
    )
    return Observations(slices, reported_until, unattributed)


def _group(events: dict[str, list[list[float]]]) -> Group:
    return Group(
        {
            event: Series(
                tuple(int(n) for n in counts),
                tuple(n + s for n, s in zip(counts, sums, strict=True)),
                tuple(n + q for n, q in zip(counts, squares, strict=True)),
            )
            for event, (counts, sums, squares) in sorted(events.items())
        }
    )
