"""The names of what one usage bucket holds, and how they read back.

A bucket (one environment, one flag, `BUCKET_SECONDS`) holds named numbers:

- `v|VARIANT`: evaluations of a variant;
- `e|GROUP|VARIANT|EVENT`: events of a group and variant, from every SDK (for charts);
- `o|PERCENTAGE|GROUP|EVENT`: a vector, per unit cluster, of the events an SDK counted
  while it served the flag's fallthrough at PERCENTAGE; what guards read;
- `s|…` and `q|…` (same tail as `o|…`): vectors of how far the sum of the recorded values
  and the sum of their squares exceed the count. A plain event records the value 1, so
  it adds nothing here: only measured values (`track(event, ctx, value)`) write these;
- `x|GROUP|EVENT`: events from SDKs too old to say which percentage produced them, kept
  for charts and for the note that guards did not read them;
- `u`: the end of the newest SDK window filed in the bucket (Unix seconds).

Counts are integers; `u` is a float. Redis keeps a vector in one hash field (its numbers
joined by commas, added element by element in the script), so a report writes and a read
parses one field per event and stage, not one per cluster; the SQL table keeps a row per
cluster (`NAME|CLUSTER`).
"""

from __future__ import annotations

from decimal import Decimal

VECTOR_PREFIXES = ("o|", "s|", "q|")
UNTIL = "u"


def evaluation_series(variant: str) -> str:
    return f"v|{variant}"


def event_series(group: str, variant: str, event: str) -> str:
    return f"e|{group}|{variant}|{event}"


def observed_series(kind: str, percentage: str, group: str, event: str) -> str:
    """`kind` is `o` (counts), `s` (sums) or `q` (squares)."""
    return f"{kind}|{percentage}|{group}|{event}"


def unattributed_series(group: str, event: str) -> str:
    return f"x|{group}|{event}"


def is_vector(name: str) -> bool:
    return name.startswith(VECTOR_PREFIXES)


def is_amount(name: str) -> bool:
    """Stored as a float (the `amount` column in SQL), not as a count."""
    return name == UNTIL or name.startswith(("s|", "q|"))


def percentage_text(percentage: Decimal) -> str:
    """One spelling per percentage (`50`, `0.1`, `12.345`), whatever the SDK sent."""
    return format(percentage.normalize(), "f")


def parse_observed(name: str) -> tuple[str, Decimal, str, str] | None:
    """(kind `o`/`s`/`q`, percentage, group, event) of a vector's name; None for any other
    name. Event names may hold `|`: they come last."""
    parts = name.split("|", 3)
    if len(parts) != 4 or parts[0] not in ("o", "s", "q") or not parts[3]:
        return None
    try:
        return parts[0], Decimal(parts[1]), parts[2], parts[3]
    except ArithmeticError:
        return None
