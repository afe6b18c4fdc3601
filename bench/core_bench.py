"""How long one flag evaluation takes in the core, next to what it cannot go below.

    python bench/core_bench.py            # full run
    python bench/core_bench.py --quick    # a few seconds, rougher numbers

Three flags (shared with the SDK benchmark, in `bench/cases.py`) are evaluated against
pre-built contexts whose targeting keys vary, so every call hashes a different unit and
context creation is not timed:

  A  on for everyone          (enabled, fallthrough serves `on`)
  B  10% rollout               (fallthrough rollout by targetingKey, otherwise `off`)
  C  rule, else 25% rollout    (country in [US, CA, DE] and plan in [pro] serves `on`)

Two floors run through the same harness: a bare Python function call, and a dict lookup
plus the bucket hash of contract 2. Every case and floor is a function called as
`fn(snapshot, key, ctx)` in the same `for ctx in contexts` loop, so loop and call
overhead is identical across rows; each row is the best of several repeats, with the
garbage collector off while timing (as `timeit` does).

Each case runs through both entry points of the core:

  resolve   the hot path the SDK uses: results are built once per snapshot and shared,
            so a call allocates nothing (the rollout bucket is left out)
  evaluate  the full result including the unit's rollout bucket, which costs building
            one result object per rollout-decided call

The goal: case B within 2x of the dict + mmh3 floor.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import version

from cases import DOCUMENT, ENV, Context, bare_call, dict_and_mmh3, make_contexts, measure
from graylane.core import Snapshot, compile_document, evaluate, parse_document, resolve

GOAL_CASE = "B 10% rollout  resolve"
GOAL_RATIO = 2.0
FLOOR = "floor: dict + mmh3"

Call = Callable[[Snapshot, str, Context], object]


def describe_cases(snapshot: Snapshot, contexts: Sequence[Context]) -> None:
    """What each case actually served over the contexts, so the numbers mean something."""
    for key in ("everyone", "ten-percent", "targeted"):
        results = [evaluate(snapshot, key, ctx) for ctx in contexts]
        on = sum(r.variant == "on" for r in results) / len(results)
        by_rule = sum(r.rule is not None for r in results) / len(results)
        print(f"  {key:<12} on for {on:6.1%} of contexts, {by_rule:6.1%} by a rule")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short, rougher run")
    parser.add_argument("--contexts", type=int, default=10_000, help="distinct contexts")
    parser.add_argument("--repeats", type=int, help="best of this many (default 7, quick 3)")
    parser.add_argument("--passes", type=int, help="passes over the contexts per repeat")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    passes = args.passes or (1 if args.quick else 5)

    snapshot = compile_document(parse_document(DOCUMENT), ENV)
    contexts = make_contexts(args.contexts)
    cases: list[tuple[str, Call, str]] = [
        ("floor: bare call", bare_call, "ten-percent"),
        (FLOOR, dict_and_mmh3, "ten-percent"),
        ("A on for everyone  resolve", resolve, "everyone"),
        (GOAL_CASE, resolve, "ten-percent"),
        ("C rule, else 25%  resolve", resolve, "targeted"),
        ("A on for everyone  evaluate", evaluate, "everyone"),
        ("B 10% rollout  evaluate", evaluate, "ten-percent"),
        ("C rule, else 25%  evaluate", evaluate, "targeted"),
    ]

    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"mmh3 {version('mmh3')}, {platform.machine()}"
    )
    print(f"{len(contexts):,} contexts x {passes} pass(es), best of {repeats} repeats, GC off")
    describe_cases(snapshot, contexts)
    best = measure(cases, snapshot, contexts, passes, repeats)

    floor = best[FLOOR]
    bare = best["floor: bare call"]
    print()
    print(f"{'case':<30} {'ns/call':>8} {'x floor':>8} {'ns above bare call':>19}")
    for name, _, _ in cases:
        ns = best[name]
        print(f"{name:<30} {ns:8.1f} {ns / floor:8.2f} {ns - bare:19.1f}")
    ratio = best[GOAL_CASE] / floor
    met = "met" if ratio <= GOAL_RATIO else "NOT met"
    print()
    print(
        f"goal: case B within {GOAL_RATIO:g}x of the dict + mmh3 floor (hot path): {met} "
        f"({ratio:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
