"""A document compiled for one environment, built for evaluation speed.

Compiling does all the work that does not depend on the context: operators become
predicates, segments are resolved, thresholds are precomputed, and every result that
carries no bucket is built once and shared. What is left per call is attribute lookups,
predicate calls and at most two hashes.

Compiling may start from the previous snapshot of the same environment: a flag whose
parsed definition and segments are the very objects compiled before is taken over.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import mmh3

from .bucketing import BUCKETS, VARIANT_SALT_SUFFIX, threshold, unit_of
from .evaluation import Evaluation, Reason, flag_not_found, invalid_context
from .limits import INT_OUT_OF_RANGE, MAX_INT, MIN_INT, NOT_UNICODE, is_valid_text
from .model import Clause, Document, Flag, JsonValue, Rule, Segment, Serve
from .operators import OPERATORS, Predicate

Context = Mapping[str, object]
_hash = mmh3.hash
_new_tuple = tuple.__new__


def _compile_clauses(clauses: tuple[Clause, ...]) -> tuple[tuple[str, Predicate], ...]:
    return tuple((c.attribute, OPERATORS[c.op].compile(c.values)) for c in clauses)


class InvalidText(ValueError):
    """A context attribute that evaluation reads holds a value past the edge limits: text
    that is not valid Unicode (a lone surrogate, which can be neither hashed nor matched)
    or an integer outside 64 bits (which the server refuses). Raised inside a snapshot's
    compiled objects, turned into an INVALID_CONTEXT result by `evaluate` and `resolve`."""

    def __init__(self, attribute: str, problem: str = NOT_UNICODE) -> None:
        super().__init__(attribute)
        self.attribute = attribute
        self.problem = problem


def _check_text(text: str, attribute: str) -> None:
    # isascii() is a flag read in CPython: valid text pays one call, no encoding.
    if not text.isascii() and not is_valid_text(text):
        raise InvalidText(attribute)


def _checked_unit(value: object, attribute: str) -> str | None:
    """`unit_of` for a value that is not a plain str, refusing an integer past 64 bits
    (its decimal text would be hashed where the server answers INVALID_CONTEXT)."""
    if isinstance(value, int) and not MIN_INT <= value <= MAX_INT:
        raise InvalidText(attribute, INT_OUT_OF_RANGE)
    return unit_of(value)


def clauses_match(clauses: tuple[tuple[str, Predicate], ...], context: Context) -> bool:
    """All clauses hold; a missing (or null) attribute fails its clause. Raises
    InvalidText for a string attribute that is not valid Unicode or an integer outside
    64 bits."""
    for attribute, predicate in clauses:
        value = context.get(attribute)
        if value is None:
            return False
        if isinstance(value, str):
            if not value.isascii() and not is_valid_text(value):
                raise InvalidText(attribute)
        elif isinstance(value, int) and not MIN_INT <= value <= MAX_INT:
            raise InvalidText(attribute, INT_OUT_OF_RANGE)
        if not predicate(value):
            return False
    return True


@dataclass(frozen=True, slots=True)
class CompiledSegment:
    source: Segment
    include: frozenset[str]
    exclude: frozenset[str]
    clauses: tuple[tuple[str, Predicate], ...]

    def contains(self, context: Context) -> bool:
        # 1. excluded keys are never in; 2. included keys always are; 3. else the clauses.
        key = _checked_unit(context.get("targetingKey"), "targetingKey")
        if key is not None:
            _check_text(key, "targetingKey")
            if key in self.exclude:
                return False
            if key in self.include:
                return True
        return bool(self.clauses) and clauses_match(self.clauses, context)


@dataclass(frozen=True, slots=True)
class FixedServe:
    result: Evaluation

    def resolve(self, context: Context) -> Evaluation:
        return self.result

    def evaluate(self, context: Context) -> Evaluation:
        return self.result

    def shared(self) -> tuple[Evaluation, ...]:
        return (self.result,)


@dataclass(frozen=True, slots=True)
class RolloutServe:
    bucket_by: str
    salt_prefix: str
    variant_prefix: str
    threshold: int
    outside: Evaluation
    inside: tuple[tuple[int, Evaluation], ...]
    """(cumulative variant threshold, result), zero-weight variants left out."""
    no_unit: Evaluation
    """For a context without a unit: outside, except at 100% where all are inside."""

    def resolve(self, context: Context) -> Evaluation:
        """The shared result for this context's unit, without its bucket: no allocation."""
        unit = context.get(self.bucket_by)
        if type(unit) is not str:
            unit = _checked_unit(unit, self.bucket_by)
            if unit is None:
                return self.no_unit
        if not unit.isascii() and not is_valid_text(unit):
            raise InvalidText(self.bucket_by)
        if _hash(self.salt_prefix + unit, 0, False) % BUCKETS >= self.threshold:
            return self.outside
        return self._variant(unit)

    def evaluate(self, context: Context) -> Evaluation:
        """The result with the unit's bucket filled in: one allocation per call."""
        unit = context.get(self.bucket_by)
        if type(unit) is not str:
            unit = _checked_unit(unit, self.bucket_by)
            if unit is None:
                return self.no_unit
        if not unit.isascii() and not is_valid_text(unit):
            raise InvalidText(self.bucket_by)
        bucket = _hash(self.salt_prefix + unit, 0, False) % BUCKETS
        result = self.outside if bucket >= self.threshold else self._variant(unit)
        return _new_tuple(Evaluation, (*result[:-1], bucket))

    def _variant(self, unit: str) -> Evaluation:
        inside = self.inside
        if len(inside) > 1:
            variant_bucket = self.variant_bucket(unit)
            for upper, result in inside:
                if variant_bucket < upper:
                    return result
        return inside[-1][1]

    def variant_bucket(self, unit: str) -> int:
        _check_text(unit, self.bucket_by)
        return _hash(self.variant_prefix + unit, 0, False) % BUCKETS

    def shared(self) -> tuple[Evaluation, ...]:
        return (self.outside, self.no_unit, *(result for _, result in self.inside))


Serving = FixedServe | RolloutServe


@dataclass(frozen=True, slots=True)
class CompiledRule:
    source: Rule
    clauses: tuple[tuple[str, Predicate], ...]
    segment: CompiledSegment | None
    serve: Serving

    def matches(self, context: Context) -> bool:
        if not clauses_match(self.clauses, context):
            return False
        return self.segment is None or self.segment.contains(context)


@dataclass(frozen=True, slots=True)
class CompiledFlag:
    source: Flag
    key: str
    enabled: bool
    disabled: FixedServe
    rules: tuple[CompiledRule, ...]
    fallthrough: Serving

    def decide(self, context: Context) -> Serving:
        """Which serve answers: the one place that orders evaluation."""
        # 1. a disabled flag serves its off variant; 2. the first matching rule decides;
        # 3. otherwise the fallthrough does.
        if not self.enabled:
            return self.disabled
        for rule in self.rules:
            if rule.matches(context):
                return rule.serve
        return self.fallthrough


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything needed to evaluate one environment's flags; immutable, safe to share."""

    environment: str
    flags: Mapping[str, CompiledFlag]
    document: Document
    version: str | None = None
    segments: Mapping[str, CompiledSegment] = field(default_factory=dict, repr=False)
    """Every segment of `document`, compiled: what the next compile can take over."""

    def shared_results(self) -> Iterator[Evaluation]:
        """Every result `resolve` can return for a known flag: built once, shared by all
        calls (so a caller can count them by identity)."""
        for flag in self.flags.values():
            yield from flag.disabled.shared()
            for rule in flag.rules:
                yield from rule.serve.shared()
            yield from flag.fallthrough.shared()


def evaluate(snapshot: Snapshot, flag_key: str, context: Context) -> Evaluation:
    """Evaluate one flag for one context, with the rollout bucket when a rollout decided.
    Never raises: an unknown flag, or a context attribute read that is past the edge
    limits (text that is not valid Unicode, an integer outside 64 bits), is an error
    result."""
    flag = snapshot.flags.get(flag_key)
    if flag is None:
        return flag_not_found(flag_key)
    try:
        return flag.decide(context).evaluate(context)
    except InvalidText as exc:
        return invalid_context(flag_key, exc.attribute, exc.problem)


def resolve(snapshot: Snapshot, flag_key: str, context: Context) -> Evaluation:
    """The hot path: the same answer as `evaluate` without the bucket, returned from
    results built once per snapshot, so a call allocates nothing."""
    flag = snapshot.flags.get(flag_key)
    if flag is None:
        return flag_not_found(flag_key)
    try:
        return flag.decide(context).resolve(context)
    except InvalidText as exc:
        return invalid_context(flag_key, exc.attribute, exc.problem)


def compile_document(
    document: Document,
    environment: str,
    version: str | None = None,
    previous: Snapshot | None = None,
) -> Snapshot:
    """Compile a validated document for one environment. A flag without configuration
    for the environment is compiled as disabled: it serves its off variant.

    With `previous` (a snapshot of the same environment; another one is ignored), what
    was compiled from the very same parsed objects is taken over rather than compiled
    again: pass the document `parse_document(..., previous=previous.document)` gave.
    Compiling is pure, so the result evaluates exactly as one compiled from scratch."""
    if previous is not None and previous.environment != environment:
        previous = None
    old_segments = {} if previous is None else previous.segments
    old_flags = {} if previous is None else previous.flags
    segments = {
        key: _unchanged_segment(old_segments.get(key), segment) or _compile_segment(segment)
        for key, segment in document.segments.items()
    }
    flags = {
        key: _unchanged_flag(old_flags.get(key), flag, segments)
        or _compile_flag(flag, environment, segments)
        for key, flag in document.flags.items()
    }
    return Snapshot(
        environment=environment,
        flags=flags,
        document=document,
        version=version,
        segments=segments,
    )


def _unchanged_segment(
    compiled: CompiledSegment | None, segment: Segment
) -> CompiledSegment | None:
    return compiled if compiled is not None and compiled.source is segment else None


def _unchanged_flag(
    compiled: CompiledFlag | None, flag: Flag, segments: Mapping[str, CompiledSegment]
) -> CompiledFlag | None:
    """The compiled flag, if it came from this very flag and every segment its rules
    use is still the same compiled segment (a changed segment is compiled anew)."""
    if compiled is None or compiled.source is not flag:
        return None
    for rule in compiled.rules:
        if rule.segment is not None and rule.segment is not segments.get(rule.segment.source.key):
            return None
    return compiled


def _compile_segment(segment: Segment) -> CompiledSegment:
    return CompiledSegment(
        source=segment,
        include=frozenset(segment.include),
        exclude=frozenset(segment.exclude),
        clauses=_compile_clauses(segment.when),
    )


def _compile_flag(
    flag: Flag, environment: str, segments: Mapping[str, CompiledSegment]
) -> CompiledFlag:
    values = dict(flag.variants)
    disabled = FixedServe(
        Evaluation(flag.key, values[flag.off_variant], flag.off_variant, Reason.DISABLED)
    )
    config = flag.environments.get(environment)
    if config is None:
        return CompiledFlag(flag, flag.key, False, disabled, (), disabled)
    rules = tuple(
        CompiledRule(
            source=rule,
            clauses=_compile_clauses(rule.when),
            segment=None if rule.segment is None else segments[rule.segment],
            serve=_compile_serve(flag, rule.serve, values, rule.name),
        )
        for rule in config.rules
    )
    fallthrough = _compile_serve(flag, config.fallthrough, values, None)
    return CompiledFlag(flag, flag.key, config.enabled, disabled, rules, fallthrough)


def _compile_serve(
    flag: Flag, serve: Serve, values: Mapping[str, JsonValue], rule: str | None
) -> Serving:
    def result(variant: str, reason: Reason) -> Evaluation:
        return Evaluation(flag.key, values[variant], variant, reason, rule=rule)

    if serve.rollout is None:
        assert serve.variant is not None
        reason = Reason.STATIC if rule is None else Reason.TARGETING_MATCH
        return FixedServe(result(serve.variant, reason))
    rollout = serve.rollout
    assert serve.otherwise is not None
    inside: list[tuple[int, Evaluation]] = []
    cumulative = 0
    for variant, weight in rollout.variants:
        if weight > 0:
            cumulative += threshold(weight)
            inside.append((cumulative, result(variant, Reason.SPLIT)))
    outside = result(serve.otherwise, Reason.SPLIT)
    limit = threshold(rollout.percentage)
    salt = flag.bucket_salt
    return RolloutServe(
        bucket_by=rollout.bucket_by,
        salt_prefix=f"{salt}:",
        variant_prefix=f"{salt}{VARIANT_SALT_SUFFIX}:",
        threshold=limit,
        outside=outside,
        inside=tuple(inside),
        no_unit=inside[0][1] if limit >= BUCKETS else outside,
    )
