"""Evaluation and event counts, aggregated in memory and sent as deltas.

The hot path takes no lock: each thread owns a dict of cumulative counts that only it
writes. The flusher reads copies, sends what grew since the last successful send, and
keeps the rest for the next try, so a server that is away loses nothing and memory
stays bounded by the number of distinct (flag, variant, event, percentage) keys, never
by traffic or time (the tables of threads that ended are folded into one).

Events of a flag under a ramp carry the fallthrough rollout percentage the SDK served
when it counted them, and are split into `CLUSTERS` unit clusters: a unit always falls
in the same cluster, so guards can analyse units rather than requests. Only flag keys,
variant names, event names, percentages and per-cluster numbers leave the process: no
targeting keys, no attributes.
"""

from __future__ import annotations

import itertools
import random
import threading
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

from graylane.core.bucketing import bucket

MAX_KEYS_PER_THREAD = 10_000
"""Past this many distinct keys in one thread, new keys are dropped and counted."""
MAX_ENTRIES_PER_REPORT = 400
"""Evaluation and event entries per report: 400 events with values per cluster stay well
under the server's default 1 MiB body limit."""

CLUSTERS = 32
"""Unit clusters per flag: `bucket(flag_salt + ":cluster", unit) % CLUSTERS`."""
_ZEROS = bytes(8 * CLUSTERS)

EvaluationKey = tuple[str, str]
"""(flag, variant)"""
EventKey = tuple[str, str, str, str, str]
"""(flag, variant, group, event, percentage); group is `exposed`, `unexposed` or
`targeted`; percentage is the fallthrough rollout's as text, "" when there is none."""

Cell = list[Any]
"""[counts per cluster (array 'q'), sums and squares per cluster (arrays 'd') or None
until the event first carries a value]."""
Totals = tuple[list[int], list[float] | None, list[float] | None]
"""Counts, sums and squares per cluster; sums and squares None while every event was
plain (value 1)."""


def cluster_of(salt: str, unit: str | None) -> int:
    """The unit's cluster of a flag salted `salt`; a random one for no unit (a unit of
    its own) or a unit that has no UTF-8 form."""
    if unit is not None:
        try:
            return bucket(salt + ":cluster", unit) % CLUSTERS
        except ValueError:
            pass
    return random.randrange(CLUSTERS)


@lru_cache(maxsize=1024)
def percentage_text(threshold: int) -> str:
    """The rollout percentage of a bucket threshold (50000 -> "50", 100 -> "0.1")."""
    return format((Decimal(threshold) / 1000).normalize(), "f")


@dataclass(frozen=True, slots=True)
class Pending:
    counts: Counter[tuple[str, ...]]
    dropped: int
    totals: Counter[tuple[str, ...]]
    dropped_total: int
    events: dict[EventKey, Totals] = field(default_factory=dict)
    """What grew since the last send, per event key (deltas)."""
    event_totals: dict[EventKey, Totals] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.counts) or bool(self.events) or self.dropped > 0

    def parts(self, size: int = MAX_ENTRIES_PER_REPORT) -> list[Pending]:
        """This delta in reports of at most `size` entries each, so that none outgrows
        the server's body limit; each is marked sent on its own."""
        counts, events = list(self.counts), list(self.events)
        out: list[Pending] = []
        while counts or events or not out:
            taken_counts, counts = counts[:size], counts[size:]
            room = size - len(taken_counts)
            taken_events, events = events[:room], events[room:]
            out.append(
                Pending(
                    Counter({k: self.counts[k] for k in taken_counts}),
                    self.dropped if not out else 0,
                    Counter({k: self.totals[k] for k in taken_counts}),
                    0,
                    {k: self.events[k] for k in taken_events},
                    {k: self.event_totals[k] for k in taken_events},
                )
            )
        return out


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


class _Thread:
    """What one thread counts; only that thread writes it."""

    __slots__ = ("counts", "dropped", "events", "thread")

    def __init__(self) -> None:
        self.thread = threading.current_thread()
        self.counts: dict[tuple[str, ...], int] = {}
        self.events: dict[EventKey, Cell] = {}
        self.dropped = [0]


class Recorder:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything (a forked child must not resend its parent's counts)."""
        self._local = threading.local()
        self._lock = threading.Lock()
        self._threads: list[_Thread] = []
        self._ended = _Thread()
        """The counts of threads that ended, folded together (written under the lock)."""
        self._sent: Counter[tuple[str, ...]] = Counter()
        self._events_sent: dict[EventKey, Totals] = {}
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
            for counters in retired:
                for key, value in counters.totals().items():
                    self._ended.counts[key] = self._ended.counts.get(key, 0) + value

    def _mine(self) -> _Thread:
        try:
            mine: _Thread = self._local.mine
            return mine
        except AttributeError:
            mine = self._local.mine = _Thread()
            with self._lock:
                self._threads.append(mine)
            return mine

    def add(self, key: tuple[str, ...], amount: int = 1) -> None:
        mine = self._mine()
        table = mine.counts
        current = table.get(key)
        if current is None and len(table) >= MAX_KEYS_PER_THREAD:
            mine.dropped[0] += amount
            return
        table[key] = (current or 0) + amount

    def add_event(self, key: EventKey, cluster: int, value: float | None = None) -> None:
        """Count one event in `cluster`; `value` (None: a plain event, value 1) adds to the
        cluster's sum and sum of squares."""
        mine = self._mine()
        cell = mine.events.get(key)
        if cell is None:
            if len(mine.events) >= MAX_KEYS_PER_THREAD:
                mine.dropped[0] += 1
                return
            cell = mine.events[key] = [array("q", _ZEROS), None, None]
        if value is None:
            cell[0][cluster] += 1
            if cell[1] is not None:
                cell[1][cluster] += 1.0
                cell[2][cluster] += 1.0
            return
        if cell[1] is None:
            # Every event counted so far was plain: its value was 1.
            cell[1], cell[2] = array("d", map(float, cell[0])), array("d", map(float, cell[0]))
        cell[0][cluster] += 1
        cell[1][cluster] += value
        cell[2][cluster] += value * value

    def totals(self) -> tuple[Counter[tuple[str, ...]], int]:
        """Cumulative counts over every thread since the recorder began."""
        totals, _, dropped = self._totals()
        return totals, dropped

    def _totals(self) -> tuple[Counter[tuple[str, ...]], dict[EventKey, Totals], int]:
        with self._lock:
            self._fold_ended()
            threads = [*self._threads, self._ended]
            shared = list(self._shared)
        totals: Counter[tuple[str, ...]] = Counter()
        events: dict[EventKey, Totals] = {}
        dropped = 0
        for mine in threads:
            totals.update(dict(mine.counts))  # dict() copies in one step under the GIL
            for key, cell in dict(mine.events).items():
                _merge(events, key, _copy(cell))
            dropped += mine.dropped[0]
        for counters in shared:
            totals.update(counters.totals())
        return totals, events, dropped

    def _fold_ended(self) -> None:
        """Fold the tables of threads that ended into one (under the lock): an app that
        starts a thread per request must not grow a table per request."""
        alive = []
        for mine in self._threads:
            if mine.thread.is_alive():
                alive.append(mine)
                continue
            for key, value in mine.counts.items():
                self._ended.counts[key] = self._ended.counts.get(key, 0) + value
            for key, cell in mine.events.items():
                _fold(self._ended.events, key, cell)
            self._ended.dropped[0] += mine.dropped[0]
        self._threads = alive

    def pending(self) -> Pending:
        """What grew since the last `mark_sent`."""
        totals, events, dropped = self._totals()
        delta = Counter({k: v - self._sent[k] for k, v in totals.items() if v > self._sent[k]})
        grown: dict[EventKey, Totals] = {}
        for key, now in events.items():
            change = _minus(now, self._events_sent.get(key))
            if change is not None:
                grown[key] = change
        return Pending(delta, dropped - self._dropped_sent, totals, dropped, grown, events)

    def mark_sent(self, pending: Pending) -> None:
        """`pending` (or one of its `parts`) reached the server."""
        self._sent.update({k: pending.totals[k] for k in pending.counts})
        self._events_sent.update({k: pending.event_totals[k] for k in pending.events})
        self._dropped_sent += pending.dropped


def _copy(cell: Cell) -> Totals:
    # The owner may be mid-way through an event: a count can go out one flush before
    # its value (or the reverse); the totals stay exact.
    counts, sums, squares = cell[0].tolist(), cell[1], cell[2]
    if sums is None or squares is None:
        return counts, None, None
    return counts, sums.tolist(), squares.tolist()


def _merge(into: dict[EventKey, Totals], key: EventKey, add: Totals) -> None:
    held = into.get(key)
    if held is None:
        into[key] = add
        return
    counts = [a + b for a, b in zip(held[0], add[0], strict=True)]
    if held[1] is None and add[1] is None:
        into[key] = (counts, None, None)
        return
    sums = [a + b for a, b in zip(_values(held)[0], _values(add)[0], strict=True)]
    squares = [a + b for a, b in zip(_values(held)[1], _values(add)[1], strict=True)]
    into[key] = (counts, sums, squares)


def _values(totals: Totals) -> tuple[list[float], list[float]]:
    """Sums and squares, with a plain event's value 1 where none was recorded."""
    if totals[1] is None or totals[2] is None:
        plain = [float(n) for n in totals[0]]
        return plain, plain
    return totals[1], totals[2]


def _fold(into: dict[EventKey, Cell], key: EventKey, cell: Cell) -> None:
    merged: dict[EventKey, Totals] = {}
    held = into.get(key)
    if held is not None:
        merged[key] = _copy(held)
    _merge(merged, key, _copy(cell))
    counts, sums, squares = merged[key]
    into[key] = [
        array("q", counts),
        None if sums is None else array("d", sums),
        None if squares is None else array("d", squares),
    ]


def _minus(now: Totals, sent: Totals | None) -> Totals | None:
    """What grew since `sent`, or None when nothing did."""
    if sent is None:
        return now if any(now[0]) or (now[1] is not None and any(now[1])) else None
    counts = [a - b for a, b in zip(now[0], sent[0], strict=True)]
    if now[1] is None:
        return (counts, None, None) if any(counts) else None
    sums_now, squares_now = _values(now)
    sums_sent, squares_sent = _values(sent)
    sums = [a - b for a, b in zip(sums_now, sums_sent, strict=True)]
    squares = [a - b for a, b in zip(squares_now, squares_sent, strict=True)]
    if not any(counts) and not any(sums) and not any(squares):
        return None
    return counts, sums, squares


def payload(
    pending: Pending, *, version: int | None, window: tuple[float, float]
) -> dict[str, Any]:
    """The body of `POST /api/v1/sdk/metrics`."""
    counts = pending.counts
    evaluations = [
        {"flag": k[0], "variant": k[1], "count": n} for k, n in counts.items() if len(k) == 2
    ]
    events: list[dict[str, Any]] = []
    for (flag, variant, group, event, percentage), (n, sums, squares) in pending.events.items():
        entry: dict[str, Any] = {
            "flag": flag,
            "variant": variant,
            "group": group,
            "event": event,
            "count": sum(n),
        }
        if percentage:
            entry["percentage"] = float(percentage)
            entry["clusters"] = n
            if sums is not None:
                entry["sums"], entry["squares"] = sums, squares
        events.append(entry)
    return {
        "config_version": version,
        "window": {"start": window[0], "end": window[1]},
        "evaluations": evaluations,
        "events": events,
        "dropped": pending.dropped,
    }
