"""Evaluation and event counts, aggregated in memory and sent as deltas.

The hot path takes no lock: each thread owns a dict of cumulative counts that only it
writes. The flusher reads copies, sends what grew since the last successful send, and
keeps the rest for the next try, so a server that is away loses nothing and memory
stays bounded by the number of distinct (flag, variant, event) keys, never by time.
Only flag keys, variant names and event names leave the process: no targeting keys,
no attributes.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MAX_KEYS_PER_THREAD = 10_000
"""Past this many distinct keys in one thread, new keys are dropped and counted."""

EvaluationKey = tuple[str, str]
"""(flag, variant)"""
EventKey = tuple[str, str, str, str]
"""(flag, variant, group, event); group is `exposed`, `unexposed` or `targeted`."""


@dataclass(frozen=True, slots=True)
class Pending:
    counts: Counter[tuple[str, ...]]
    dropped: int
    totals: Counter[tuple[str, ...]]
    dropped_total: int

    def __bool__(self) -> bool:
        return bool(self.counts) or self.dropped > 0


class SharedCounters:
    """One `itertools.count` per result object that a snapshot shares between calls.

    Counting an evaluation is then `next(counter)`: a single C call, atomic under the GIL,
    with no tuple to build and no thread-local to find. Snapshots come and go; a retired
    snapshot's counters stay until their last counts have been read."""

    def __init__(self) -> None:
        self.by_id: dict[int, itertools.count[int]] = {}
        self._labels: list[tuple[tuple[str, str], itertools.count[int], object]] = []

    @classmethod
    def of(cls, results: Iterable[tuple[str, str, object]]) -> SharedCounters:
        """`results`: (flag, variant, result object) for every shared result."""
        counters = cls()
        for flag, variant, result in results:
            if id(result) in counters.by_id:
                continue
            counter = itertools.count()
            counters.by_id[id(result)] = counter
            # The result is kept alive here, so its id cannot be reused while counted.
            counters._labels.append(((flag, variant), counter, result))
        return counters

    def totals(self) -> Counter[tuple[str, ...]]:
        totals: Counter[tuple[str, ...]] = Counter()
        for label, counter, _ in self._labels:
            # repr is "count(N)": the one way to read a count without advancing it.
            value = int(repr(counter)[6:-1])
            if value:
                totals[label] += value
        return totals


class Recorder:
    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._tables: list[dict[tuple[str, ...], int]] = []
        self._dropped_by_thread: list[list[int]] = []
        self._sent: Counter[tuple[str, ...]] = Counter()
        self._dropped_sent = 0
        self._shared: list[SharedCounters] = []

    def adopt(self, counters: SharedCounters) -> None:
        """Include a snapshot's shared counters in every total from now on."""
        with self._lock:
            self._shared.append(counters)

    def retire_all_but(self, current: SharedCounters) -> None:
        """Fold the counters of snapshots no longer served into one table, so memory
        follows the number of flags and variants, not the number of config changes.
        Called after a flush, long after any evaluation on an old snapshot ended."""
        with self._lock:
            retired = [c for c in self._shared if c is not current]
            self._shared = [c for c in self._shared if c is current]
        if retired:
            table, _ = self._table()
            for counters in retired:
                for key, value in counters.totals().items():
                    table[key] = table.get(key, 0) + value

    def _table(self) -> tuple[dict[tuple[str, ...], int], list[int]]:
        try:
            return self._local.table, self._local.dropped
        except AttributeError:
            table: dict[tuple[str, ...], int] = {}
            dropped = [0]
            self._local.table, self._local.dropped = table, dropped
            with self._lock:
                self._tables.append(table)
                self._dropped_by_thread.append(dropped)
            return table, dropped

    def add(self, key: tuple[str, ...], amount: int = 1) -> None:
        table, dropped = self._table()
        current = table.get(key)
        if current is None and len(table) >= MAX_KEYS_PER_THREAD:
            dropped[0] += amount
            return
        table[key] = (current or 0) + amount

    def totals(self) -> tuple[Counter[tuple[str, ...]], int]:
        """Cumulative counts over every thread since the recorder began."""
        totals: Counter[tuple[str, ...]] = Counter()
        with self._lock:
            tables = list(self._tables)
            shared = list(self._shared)
            dropped = sum(d[0] for d in self._dropped_by_thread)
        for table in tables:
            totals.update(dict(table))  # dict() copies in one step under the GIL
        for counters in shared:
            totals.update(counters.totals())
        return totals, dropped

    def pending(self) -> Pending:
        """What grew since the last `mark_sent`."""
        totals, dropped = self.totals()
        delta = Counter({k: v - self._sent[k] for k, v in totals.items() if v > self._sent[k]})
        return Pending(delta, dropped - self._dropped_sent, totals, dropped)

    def mark_sent(self, pending: Pending) -> None:
        self._sent = pending.totals
        self._dropped_sent = pending.dropped_total

    def reset(self) -> None:
        """Forget everything (a forked child must not resend its parent's counts)."""
        self._local = threading.local()
        self._lock = threading.Lock()
        self._tables = []
        self._dropped_by_thread = []
        self._sent = Counter()
        self._dropped_sent = 0
        self._shared = []


def payload(
    pending: Pending, *, version: int | None, window: tuple[float, float]
) -> dict[str, Any]:
    """The body of `POST /api/v1/sdk/metrics`."""
    counts = pending.counts
    evaluations = [
        {"flag": k[0], "variant": k[1], "count": n} for k, n in counts.items() if len(k) == 2
    ]
    events = [
        {"flag": k[0], "variant": k[1], "group": k[2], "event": k[3], "count": n}
        for k, n in counts.items()
        if len(k) == 4
    ]
    return {
        "config_version": version,
        "window": {"start": window[0], "end": window[1]},
        "evaluations": evaluations,
        "events": events,
        "dropped": pending.dropped,
    }
