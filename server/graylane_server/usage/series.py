"""The names of what one usage bucket holds, and how they read back.

A bucket (one environment, one flag, `BUCKET_SECONDS`) holds named numbers:

- `v|VARIANT`: evaluations of a variant;
- `e|GROUP|VARIANT|EVENT`: events of a group and variant, from every SDK (for charts);
- `o|PERCENTAGE|GROUP|EVENT|CLUSTER`: events an SDK counted while it served the flag's
  fallthrough at PERCENTAGE, in one unit cluster; what guards read;
- `s|…` and `q|…` (same tail as `o|…`): how far the sum of the recorded values and the
  sum of their squares exceed the count. A plain event records the value 1, so it adds
  nothing here: only measured values (`track(event, ctx, value)`) cost these writes;
- `x|GROUP|EVENT`: events from SDKs too old to say which percentage produced them, kept
  for charts and for the note that guards did not read them;
- `u`: the end of the newest SDK window filed in the bucket (Unix seconds).

Counts are integers; `s`, `q` and `u` are floats.
"""

from __future__ import annotations

from decimal import Decimal

AMOUNT_PREFIXES = ("s|", "q|")
UNTIL = "u"


def evaluation_series(variant: str) -> str:
    return f"v|{variant}"


def event_series(group: str, variant: str, event: str) -> str:
    return f"e|{group}|{variant}|{event}"


def observed_prefix(percentage: str, group: str, event: str) -> str:
    """`o|PERCENTAGE|GROUP|EVENT|`: the cluster number follows."""
    return f"o|{percentage}|{group}|{event}|"


def unattributed_series(group: str, event: str) -> str:
    return f"x|{group}|{event}"


def is_amount(name: str) -> bool:
    """Stored as a float (Redis `HINCRBYFLOAT`, or the `amount` column), not a count."""
    return name == UNTIL or name.startswith(AMOUNT_PREFIXES)


def percentage_text(percentage: Decimal) -> str:
    """One spelling per percentage (`50`, `0.1`, `12.345`), whatever the SDK sent."""
    return format(percentage.normalize(), "f")


def parse_observed(name: str) -> tuple[str, Decimal, str, str, int] | None:
    """(kind `o`/`s`/`q`, percentage, group, event, cluster) of an observed name; None for
    any other name. Event names may hold `|`: the group and cluster are found around them."""
    kind, _, rest = name.partition("|")
    if kind not in ("o", "s", "q"):
        return None
    percentage, _, rest = rest.partition("|")
    group, _, rest = rest.partition("|")
    event, _, cluster = rest.rpartition("|")
    if not event or not cluster.isdigit():
        return None
    return kind, Decimal(percentage), group, event, int(cluster)
