"""Why a flag served what it served: a trace of every clause, segment and bucket looked at.

Off the hot path: it walks the same compiled snapshot as `evaluate` in the same order, and
takes the final answer from the very objects `evaluate` uses, so the two cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .bucketing import BUCKETS, unit_of
from .evaluation import ErrorCode, Evaluation
from .model import JsonValue
from .snapshot import (
    CompiledRule,
    CompiledSegment,
    Context,
    RolloutServe,
    Serving,
    Snapshot,
    evaluate,
)


@dataclass(frozen=True, slots=True)
class ClauseTrace:
    attribute: str
    op: str
    values: tuple[object, ...]
    actual: object
    matched: bool

    @property
    def note(self) -> str:
        if self.actual is None:
            return "attribute missing"
        return "matched" if self.matched else "did not match"


@dataclass(frozen=True, slots=True)
class SegmentTrace:
    key: str
    matched: bool
    why: str
    clauses: tuple[ClauseTrace, ...] = ()


@dataclass(frozen=True, slots=True)
class RuleTrace:
    name: str
    matched: bool
    clauses: tuple[ClauseTrace, ...]
    segment: SegmentTrace | None


@dataclass(frozen=True, slots=True)
class RolloutTrace:
    bucket_by: str
    unit: str | None
    bucket: int | None
    threshold: int
    inside: bool
    variant_bucket: int | None


@dataclass(frozen=True, slots=True)
class Explanation:
    flag_key: str
    environment: str
    result: Evaluation
    found: bool
    enabled: bool = False
    rules: tuple[RuleTrace, ...] = ()
    fallthrough: bool = False
    """True when no rule matched and the fallthrough decided."""
    rollout: RolloutTrace | None = None
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, JsonValue]:
        def clauses(items: tuple[ClauseTrace, ...]) -> list[JsonValue]:
            return [
                {
                    "attribute": c.attribute,
                    "op": c.op,
                    "values": [_jsonable(v) for v in c.values],
                    "actual": _jsonable(c.actual),
                    "matched": c.matched,
                    "note": c.note,
                }
                for c in items
            ]

        rules: list[JsonValue] = []
        for rule in self.rules:
            item: dict[str, JsonValue] = {
                "name": rule.name,
                "matched": rule.matched,
                "clauses": clauses(rule.clauses),
            }
            if rule.segment is not None:
                item["segment"] = {
                    "key": rule.segment.key,
                    "matched": rule.segment.matched,
                    "why": rule.segment.why,
                    "clauses": clauses(rule.segment.clauses),
                }
            rules.append(item)
        out: dict[str, JsonValue] = {
            "flag": self.flag_key,
            "environment": self.environment,
            "found": self.found,
            "enabled": self.enabled,
            "rules": rules,
            "fallthrough": self.fallthrough,
            "result": self.result.to_dict(),
            "notes": list(self.notes),
        }
        if self.rollout is not None:
            r = self.rollout
            out["rollout"] = {
                "bucket_by": r.bucket_by,
                "unit": r.unit,
                "bucket": r.bucket,
                "threshold": r.threshold,
                "inside": r.inside,
                "variant_bucket": r.variant_bucket,
            }
        return out

    def lines(self) -> list[str]:
        """A readable, indented account for people."""
        if not self.found:
            return [f"flag {self.flag_key!r} does not exist in {self.environment}"]
        out = [
            f"flag {self.flag_key!r} in {self.environment}: "
            f"{'enabled' if self.enabled else 'disabled'}"
        ]
        for rule in self.rules:
            out.append(f"  rule {rule.name!r}: {'MATCHED' if rule.matched else 'no match'}")
            out.extend(f"    {_clause_line(c)}" for c in rule.clauses)
            if rule.segment is not None:
                s = rule.segment
                out.append(f"    segment {s.key!r}: {'in' if s.matched else 'not in'} ({s.why})")
                out.extend(f"      {_clause_line(c)}" for c in s.clauses)
        if self.fallthrough:
            out.append("  no rule matched: fallthrough")
        if self.rollout is not None:
            r = self.rollout
            if r.unit is None:
                out.append(f"  rollout by {r.bucket_by}: no unit in the context")
            else:
                out.append(
                    f"  rollout by {r.bucket_by}={r.unit!r}: bucket {r.bucket} "
                    f"{'<' if r.inside else '>='} threshold {r.threshold} "
                    f"-> {'inside' if r.inside else 'outside'}"
                    + (
                        f", variant bucket {r.variant_bucket}"
                        if r.variant_bucket is not None
                        else ""
                    )
                )
        out.extend(f"  note: {n}" for n in self.notes)
        res = self.result
        out.append(f"  => {res.variant!r} = {res.value!r} ({res.reason})")
        return out


def _jsonable(value: object) -> JsonValue:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def _clause_line(c: ClauseTrace) -> str:
    return f"{c.attribute} {c.op} {list(c.values)!r}: actual {c.actual!r} -> {c.note}"


def _trace_clauses(
    compiled: CompiledRule | CompiledSegment, context: Context
) -> tuple[ClauseTrace, ...]:
    sources = compiled.source.when
    traces = []
    for clause, (attribute, predicate) in zip(sources, compiled.clauses, strict=True):
        actual = context.get(attribute)
        matched = actual is not None and predicate(actual)
        traces.append(ClauseTrace(attribute, clause.op, clause.values, actual, matched))
        if not matched:
            break  # evaluation stops at the first failing clause, and so does the trace
    return tuple(traces)


def _trace_segment(segment: CompiledSegment, context: Context) -> SegmentTrace:
    key = unit_of(context.get("targetingKey"))
    matched = segment.contains(context)
    if key is not None and key in segment.exclude:
        return SegmentTrace(segment.source.key, matched, "targeting key excluded")
    if key is not None and key in segment.include:
        return SegmentTrace(segment.source.key, matched, "targeting key included")
    if not segment.clauses:
        return SegmentTrace(segment.source.key, matched, "not listed, and no clauses")
    why = "all clauses matched" if matched else "a clause did not match"
    return SegmentTrace(segment.source.key, matched, why, _trace_clauses(segment, context))


def _trace_rollout(serve: Serving, context: Context) -> RolloutTrace | None:
    if not isinstance(serve, RolloutServe):
        return None
    unit = unit_of(context.get(serve.bucket_by))
    if unit is None:
        everyone = serve.threshold >= BUCKETS
        return RolloutTrace(serve.bucket_by, None, None, serve.threshold, everyone, None)
    result = serve.evaluate(context)
    inside = result.bucket is not None and result.bucket < serve.threshold
    variant_bucket = serve.variant_bucket(unit) if inside and len(serve.inside) > 1 else None
    return RolloutTrace(
        serve.bucket_by, unit, result.bucket, serve.threshold, inside, variant_bucket
    )


def explain(snapshot: Snapshot, flag_key: str, context: Context) -> Explanation:
    """Trace the evaluation of one flag for one context."""
    result = evaluate(snapshot, flag_key, context)
    flag = snapshot.flags.get(flag_key)
    if flag is None:
        return Explanation(flag_key, snapshot.environment, result, found=False)
    if result.error_code is ErrorCode.INVALID_CONTEXT:
        # Tracing would read the same text again: the error names the attribute.
        notes = (str(result.error_message),)
        return Explanation(flag_key, snapshot.environment, result, True, flag.enabled, notes=notes)
    if not flag.enabled:
        configured = snapshot.environment in flag.source.environments
        note = (
            "disabled: the off variant is served"
            if configured
            else (f"not configured for {snapshot.environment}: the off variant is served")
        )
        return Explanation(flag_key, snapshot.environment, result, True, notes=(note,))
    rules: list[RuleTrace] = []
    for rule in flag.rules:
        clauses = _trace_clauses(rule, context)
        clauses_ok = len(clauses) == len(rule.clauses) and all(c.matched for c in clauses)
        segment = None
        if clauses_ok and rule.segment is not None:
            segment = _trace_segment(rule.segment, context)
        matched = clauses_ok and (segment is None or segment.matched)
        rules.append(RuleTrace(rule.source.name, matched, clauses, segment))
        if matched:
            return Explanation(
                flag_key,
                snapshot.environment,
                result,
                True,
                True,
                tuple(rules),
                rollout=_trace_rollout(rule.serve, context),
            )
    return Explanation(
        flag_key,
        snapshot.environment,
        result,
        True,
        True,
        tuple(rules),
        fallthrough=True,
        rollout=_trace_rollout(flag.fallthrough, context),
    )
