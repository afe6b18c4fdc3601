"""How long a `matches` clause takes on a catastrophic pattern, RE2 next to Python's re.

    python bench/regex_bench.py

`^(a+)+$` against a run of a's that ends in a character it cannot match is the classic
case of exponential backtracking: Python's `re` doubles its time with every character
added. Graylane compiles `matches` patterns with RE2, which runs in time linear in the
text. The goal: RE2 on 100,000 characters well under 10 ms.
"""

from __future__ import annotations

import re
import sys

from cases import best_seconds
from graylane.core.operators import OPERATORS

PATTERN = "^(a+)+$"
RE2_LENGTH = 100_000
RE_LENGTH = 24
GOAL_MS = 10.0


def main() -> int:
    predicate = OPERATORS["matches"].compile([PATTERN])
    long_text = "a" * RE2_LENGTH + "!"
    assert predicate(long_text) is False
    re2_ms = best_seconds(lambda: predicate(long_text), repeats=20) * 1000

    backtracking = re.compile(PATTERN)
    short_text = "a" * RE_LENGTH + "!"
    re_ms = best_seconds(lambda: backtracking.search(short_text), repeats=1) * 1000

    print(f"pattern {PATTERN!r}, text: a run of a's then '!'")
    print(f"{'engine':<34} {'characters':>10} {'ms':>10}")
    print(f"{'RE2 (graylane matches)':<34} {RE2_LENGTH + 1:>10,} {re2_ms:>10.3f}")
    print(f"{'Python re (backtracking)':<34} {RE_LENGTH + 1:>10,} {re_ms:>10.1f}")
    met = "met" if re2_ms < GOAL_MS else "NOT met"
    print(f"goal: RE2 on {RE2_LENGTH:,} characters under {GOAL_MS:g} ms: {met}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
