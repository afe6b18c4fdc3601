"""What the benchmarks share: the three flags, the contexts they are asked with, the
floors, and a harness that times calls the same way for every row.

  A  on for everyone          (enabled, fallthrough serves `on`)
  B  10% rollout               (fallthrough rollout by targetingKey, otherwise `off`)
  C  rule, else 25% rollout    (country in [US, CA, DE] and plan in [pro] serves `on`)

All three are boolean flags (the default variants `on: true`, `off: false`).
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import mmh3

ENV = "production"

CASES: tuple[tuple[str, str, str], ...] = (
    ("A", "everyone", "on for everyone"),
    ("B", "ten-percent", "10% rollout"),
    ("C", "targeted", "rule, else 25%"),
)
"""(letter, flag key, what it is) for each case."""

LAUNCH_COUNTRIES = ["US", "CA", "DE"]
RULE_PLANS = ["pro"]
ROLLOUT_B = 10
ROLLOUT_C = 25

DOCUMENT: dict[str, Any] = {
    "flags": {
        "everyone": {
            "environments": {ENV: {"enabled": True, "fallthrough": {"variant": "on"}}},
        },
        "ten-percent": {
            "environments": {
                ENV: {
                    "enabled": True,
                    "fallthrough": {
                        "rollout": {"percentage": ROLLOUT_B, "variants": {"on": 100}},
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
                                {"attribute": "country", "op": "in", "values": LAUNCH_COUNTRIES},
                                {"attribute": "plan", "op": "in", "values": RULE_PLANS},
                            ],
                            "serve": {"variant": "on"},
                        }
                    ],
                    "fallthrough": {
                        "rollout": {"percentage": ROLLOUT_C, "variants": {"on": 100}},
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


def make_contexts(count: int, seed: int = 7) -> list[Context]:
    """Contexts whose targeting keys vary, so every call hashes a different unit."""
    rng = random.Random(seed)
    return [
        {
            "targetingKey": f"user-{rng.randrange(10**9)}",
            "country": rng.choice(COUNTRIES),
            "plan": rng.choice(PLANS),
        }
        for _ in range(count)
    ]


def expected_on_share() -> dict[str, float]:
    """The share of random contexts each flag should serve `on` to, whatever the SDK."""
    by_rule = len(LAUNCH_COUNTRIES) / len(COUNTRIES) * len(RULE_PLANS) / len(PLANS)
    return {
        "everyone": 1.0,
        "ten-percent": ROLLOUT_B / 100,
        "targeted": by_rule + (1 - by_rule) * ROLLOUT_C / 100,
    }


def large_document(count: int, seed: int = 11) -> dict[str, Any]:
    """`count` flags in the shape the server sends an SDK (one environment, no
    descriptions): 20% static, 30% boolean rollouts, 10% three-way string splits, 40%
    with one to three targeting rules (some on segments) before a rollout."""
    rng = random.Random(seed)
    segments = {
        f"segment-{i:03d}": {
            "include": [f"user-{rng.randrange(10**9)}" for _ in range(5)],
            "when": [{"attribute": "plan", "op": "in", "values": [rng.choice(PLANS)]}],
        }
        for i in range(100)
    }

    def percentage() -> float:
        return round(rng.uniform(0, 100), 3)

    def rule(n: int) -> dict[str, Any]:
        name = f"rule-{n}"
        choice = rng.randrange(5)
        if choice == 0:
            segment = rng.choice(list(segments))
            return {"name": name, "segment": segment, "serve": {"variant": "on"}}
        version = f"{rng.randrange(1, 6)}.0.0"
        attribute, op, values = [
            ("country", "in", rng.sample(COUNTRIES, 3)),
            ("email", "ends_with", ["@example.com"]),
            ("app_version", "semver_gte", [version]),
            ("age", "gte", [rng.randrange(18, 60)]),
        ][choice - 1]
        clause = {"attribute": attribute, "op": op, "values": values}
        return {"name": name, "when": [clause], "serve": {"variant": "on"}}

    flags: dict[str, Any] = {}
    for i in range(count):
        kind = i % 10
        config: dict[str, Any] = {"enabled": rng.random() < 0.95}
        flag: dict[str, Any] = {}
        if kind < 2:
            config["fallthrough"] = {"variant": rng.choice(["on", "off"])}
        elif kind < 5:
            config["fallthrough"] = {
                "rollout": {"percentage": percentage(), "variants": {"on": 100}},
                "otherwise": "off",
            }
        elif kind < 6:
            flag["variants"] = {"control": "a", "treatment-1": "b", "treatment-2": "c"}
            flag["off_variant"] = "control"
            config["fallthrough"] = {
                "rollout": {
                    "percentage": percentage(),
                    "variants": {"treatment-1": 50, "treatment-2": 50},
                },
                "otherwise": "control",
            }
        else:
            config["rules"] = [rule(n) for n in range(rng.randrange(1, 4))]
            config["fallthrough"] = {
                "rollout": {"percentage": percentage(), "variants": {"on": 100}},
                "otherwise": "off",
            }
        flag["environments"] = {ENV: config}
        flags[f"flag-{i:05d}"] = flag
    return {"flags": flags, "segments": segments}


# --- the floors: same signature as the core's `evaluate(snapshot, key, ctx)` -----------


def bare_call(snapshot: object, key: str, ctx: Context) -> object:
    """A Python function call that does nothing: the harness's own cost."""
    return None


SALTS = {key: key for _, key, _ in CASES}


def dict_and_mmh3(snapshot: object, key: str, ctx: Context) -> object:
    """The floor the goals are stated against: a dict lookup (the flag's salt), the unit
    from the context, and contract 2's bucket written exactly as DESIGN.md spells it."""
    salt = SALTS[key]
    unit = ctx["targetingKey"]
    return mmh3.hash(salt + ":" + unit, 0, signed=False) % 100000  # type: ignore[operator]


# --- the harness -----------------------------------------------------------------------


def run_once(fn: Callable[..., object], snapshot: Any, key: str, contexts: Sequence[Any]) -> int:
    """Nanoseconds for one pass of `fn(snapshot, key, ctx)` over `contexts`."""
    start = time.perf_counter_ns()
    for ctx in contexts:
        fn(snapshot, key, ctx)
    return time.perf_counter_ns() - start


def run_args(fn: Callable[..., object], calls: Sequence[tuple[Any, ...]]) -> int:
    """Nanoseconds for one pass of `fn(*args)` over `calls`: any entry point, called with
    its own arguments, with the same loop and call overhead for every row."""
    start = time.perf_counter_ns()
    for args in calls:
        fn(*args)
    return time.perf_counter_ns() - start


def best_seconds(fn: Callable[[], object], repeats: int) -> float:
    """The fastest of `repeats` timed calls of `fn`, in seconds (for calls long enough to
    time one by one)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


Pass = Callable[[], int]
"""One timed pass over a row's calls; returns nanoseconds."""


def best_per_call(
    rows: Sequence[tuple[str, Pass, int]], passes: int, repeats: int
) -> dict[str, float]:
    """Best nanoseconds per call of each row `(name, one_pass, calls_per_pass)`.

    Every row runs once untimed first (caches, specialisation of the bytecode). Repeats
    interleave the rows, so a slow moment of the machine hits them all rather than one.
    The garbage collector is off while timing, as `timeit` does."""
    best = {name: float("inf") for name, _, _ in rows}
    for _, one_pass, _ in rows:
        one_pass()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            for name, one_pass, calls in rows:
                total = sum(one_pass() for _ in range(passes))
                best[name] = min(best[name], total / (passes * calls))
    finally:
        if gc_was_enabled:
            gc.enable()
    return best


def best_per_call_chunked(
    rows: Sequence[tuple[str, Callable[..., object], Sequence[tuple[Any, ...]]]],
    chunk: int,
    repeats: int,
) -> dict[str, float]:
    """Best nanoseconds per call of each row `(name, fn, calls)`, for rows whose costs
    differ by orders of magnitude (a 0.4 us floor next to a 100 us SDK).

    The calls are cut into chunks of `chunk` calls. Round after round, every row times
    one chunk, the same chunk for every row, so each row is sampled in the same moments
    of a busy machine and none spends seconds alone in a slow patch. Each row keeps its
    best time for each chunk over `repeats` rounds; its result is the sum of those over
    all chunks divided by the number of calls, so every row is measured on exactly the
    same calls. The garbage collector is off while timing."""
    if not rows:
        return {}
    count = len(rows[0][2])
    if any(len(calls) != count for _, _, calls in rows):
        raise ValueError("every row must have the same number of calls")
    bounds = [(start, min(start + chunk, count)) for start in range(0, count, chunk)]
    sliced = [[calls[a:b] for a, b in bounds] for _, _, calls in rows]
    best = [[float("inf")] * len(bounds) for _ in rows]
    for (_, fn, _), pieces in zip(rows, sliced, strict=True):
        run_args(fn, pieces[0])  # warm up
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            for index in range(len(bounds)):
                for row, ((_, fn, _), pieces) in enumerate(zip(rows, sliced, strict=True)):
                    ns = run_args(fn, pieces[index])
                    best[row][index] = min(best[row][index], ns)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: sum(best[row]) / count for row, (name, _, _) in enumerate(rows)}


def measure(
    cases: Sequence[tuple[str, Callable[..., object], str]],
    snapshot: Any,
    contexts: Sequence[Any],
    passes: int,
    repeats: int,
) -> dict[str, float]:
    """Best ns per call for each `(name, fn, key)`, called as `fn(snapshot, key, ctx)`."""
    rows: list[tuple[str, Pass, int]] = [
        (name, lambda fn=fn, key=key: run_once(fn, snapshot, key, contexts), len(contexts))
        for name, fn, key in cases
    ]
    return best_per_call(rows, passes, repeats)
