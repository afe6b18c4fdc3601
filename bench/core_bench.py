"""How long one flag evaluation takes in the core, next to what it cannot go below.

    python bench/core_bench.py            # full run
    python bench/core_bench.py --quick    # a few seconds, rougher numbers

Three flags are evaluated against pre-built contexts whose targeting keys vary, so
every call hashes a different unit and context creation is not timed:

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
import gc
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from importlib.metadata import version

import mmh3

from graylane.core import Snapshot, compile_document, evaluate, parse_document, resolve

ENV = "production"
GOAL_CASE = "B 10% rollout  resolve"
GOAL_RATIO = 2.0
FLOOR = "floor: dict + mmh3"

DOCUMENT = {
    "flags": {
        "everyone": {
            "environments": {ENV: {"enabled": True, "fallthrough": {"variant": "on"}}},
        },
        "ten-percent": {
            "environments": {
                ENV: {
                    "enabled": True,
                    "fallthrough": {
                        "rollout": {"percentage": 10, "variants": {"on": 100}},
                        "otherwise": "off",
                    },
                }
            },
        },
        "targeted": {
            "environments": {
                ENV: {
                    "enabled": True,
                    "rules": [
                        {
                            "name": "pro-in-launch-countries",
                            "when": [
                                {"attribute": "country", "op": "in", "values": ["US", "CA", "DE"]},
                                {"attribute": "plan", "op": "in", "values": ["pro"]},
                            ],
                            "serve": {"variant": "on"},
                        }
                    ],
                    "fallthrough": {
                        "rollout": {"percentage": 25, "variants": {"on": 100}},
                        "otherwise": "off",
                    },
                }
            },
        },
    }
}

COUNTRIES = ["US", "CA", "DE", "FR", "GB", "JP", "BR", "IN"]
PLANS = ["free", "pro", "team"]

Context = dict[str, object]
Call = Callable[[Snapshot, str, Context], object]


def make_contexts(count: int, seed: int = 7) -> list[Context]:
    rng = random.Random(seed)
    return [
        {
            "targetingKey": f"user-{rng.randrange(10**9)}",
            "country": rng.choice(COUNTRIES),
            "plan": rng.choice(PLANS),
        }
        for _ in range(count)
    ]


# --- the floors: same signature as `evaluate`, so the harness treats them alike ----------


def bare_call(snapshot: Snapshot, key: str, ctx: Context) -> object:
    """A Python function call that does nothing: the harness's own cost."""
    return None


SALTS = {"ten-percent": "ten-percent"}


def dict_and_mmh3(snapshot: Snapshot, key: str, ctx: Context) -> object:
    """The floor the goal is stated against: a dict lookup (the flag's salt), the unit
    from the context, and contract 2's bucket written exactly as DESIGN.md spells it."""
    salt = SALTS[key]
    unit = ctx["targetingKey"]
    return mmh3.hash(salt + ":" + unit, 0, signed=False) % 100000  # type: ignore[operator]


# --- the harness -----------------------------------------------------------------------


def run_once(fn: Call, snapshot: Snapshot, key: str, contexts: Sequence[Context]) -> int:
    """Nanoseconds for one pass over `contexts`."""
    start = time.perf_counter_ns()
    for ctx in contexts:
        fn(snapshot, key, ctx)
    return time.perf_counter_ns() - start


def measure(
    cases: Sequence[tuple[str, Call, str]],
    snapshot: Snapshot,
    contexts: Sequence[Context],
    passes: int,
    repeats: int,
) -> dict[str, float]:
    """Best ns per call for each case. Repeats interleave the cases, so a slow moment of
    the machine hits them all rather than one."""
    best = {name: float("inf") for name, _, _ in cases}
    for _name, fn, key in cases:  # warm up: caches, specialisation of the bytecode
        run_once(fn, snapshot, key, contexts)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            for name, fn, key in cases:
                total = sum(run_once(fn, snapshot, key, contexts) for _ in range(passes))
                best[name] = min(best[name], total / (passes * len(contexts)))
    finally:
        if gc_was_enabled:
            gc.enable()
    return best


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
