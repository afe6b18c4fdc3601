"""Reading and writing the flag document (contract 1).

`parse_document` turns plain JSON-like data into the typed model of `model.py`, or
raises `DocumentError` listing every problem with its path. It checks everything that
could go wrong at evaluation time, so evaluation never meets a bad rule.
`dump_document` writes the model back as plain data that parses to the same model.

A config changes a flag or two at a time, so a parse may start from the previous one:
flags and segments whose raw definitions are unchanged are taken over, not read again.
"""

from __future__ import annotations

import marshal
import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Literal, cast

from .durations import format_duration, parse_duration
from .limits import MAX_DEPTH, json_problems, path_key
from .model import (
    DEFAULT_BUCKET_BY,
    KPI_MAX,
    KPI_WARN,
    RATE_SUFFIX,
    Clause,
    Document,
    Flag,
    FlagEnvironment,
    Guard,
    GuardKind,
    JsonValue,
    RampPlan,
    Rollout,
    Rule,
    Scalar,
    Segment,
    Serve,
    Sources,
)
from .operators import OPERATORS, OperandError, describe, is_finite_number, is_number
from .problems import DocumentError, Problem

KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", re.ASCII)
"""Flag, segment, environment and variant keys; use with fullmatch."""
KEY_RULE = "letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128"
HUNDRED = Decimal(100)
MAX_DECIMALS = 3

_TOP_FIELDS = ("flags", "segments")
_FLAG_FIELDS = ("description", "salt", "variants", "off_variant", "environments", "tags")
_ENV_FIELDS = ("enabled", "rules", "fallthrough", "ramp")
_RULE_FIELDS = ("name", "when", "segment", "serve")
_CLAUSE_FIELDS = ("attribute", "op", "values")
_SERVE_FIELDS = ("variant", "rollout", "otherwise")
_ROLLOUT_FIELDS = ("percentage", "bucket_by", "variants")
_SEGMENT_FIELDS = ("description", "include", "exclude", "when")
_RAMP_FIELDS = (
    "approval_above",
    "stages",
    "min_stage_duration",
    "min_samples",
    "guards",
    "auto_advance",
    "on_breach",
    "watch_completed",
)
_GUARD_FIELDS = ("kind", "metric", "max", "warn", "name", "query", "url")
_KPI_FIELDS = ("kpi", "name")
_GUARD_KINDS = ("absolute", "relative", "prometheus", "webhook")
_MAX_EVENT = 64
"""The longest event name an SDK report carries."""
_ON_BREACH = ("rollback", "step_back")
_DEFAULT_VARIANTS: tuple[tuple[str, JsonValue], ...] = (("on", True), ("off", False))
_MARSHAL_FORMAT = 2
"""The last format without shared references: its bytes depend on values only."""
_marshal = cast(Callable[[object, int], bytes], marshal.dumps)
"""Typed for any object: what it cannot write, it refuses with ValueError."""


def parse_document(data: object, previous: Document | None = None) -> Document:
    """Validate and type a whole document; raise `DocumentError` with every problem.

    `previous`, an earlier result of this function, makes the parse incremental: a flag
    or segment whose raw definition is identical JSON (`identical_json`) to the one it
    was parsed from is taken over as it is. The result and any problems are exactly
    those of a parse from scratch. The data `previous` was parsed from must not have been
    changed in place since (its definitions are kept and compared, not copied)."""
    reader = _Reader(previous.sources if previous is not None else None)
    document = reader.document(data)
    if reader.problems:
        raise DocumentError(reader.problems)
    return document


def parse_ramp(data: object, path: str = "ramp") -> RampPlan:
    """A ramp block on its own (as stored in a flag's environment configuration)."""
    reader = _Reader()
    # A ramp sits five levels into a document (flags.<key>.environments.<env>.ramp).
    if reader.out_of_limits(data, path, depth=6):
        raise DocumentError(reader.problems)
    plan = reader.ramp(data, path)
    if reader.problems or plan is None:
        raise DocumentError(reader.problems or [Problem(path, "not a ramp plan")])
    return plan


def dump_document(document: Document) -> dict[str, JsonValue]:
    """The document as plain JSON-ready data, explicit about every default it relies on."""
    out: dict[str, JsonValue] = {
        "flags": {key: _dump_flag(flag) for key, flag in document.flags.items()},
    }
    if document.segments:
        out["segments"] = {key: _dump_segment(s) for key, s in document.segments.items()}
    return out


def identical_json(a: object, b: object) -> bool:
    """Whether two raw values are the same JSON data: same types, same key order, same
    values. Stricter than `==`, which takes True for 1 and ignores key order, while both
    change what a document means (a type error, the order of variants).

    marshal's format 2 writes each built-in type exactly (True is not 1, -0.0 is not 0.0),
    mappings in order and no references between objects, so equal bytes mean identical
    data; it refuses every other type, which is then simply parsed again. In C, it is
    several times faster than walking the data in Python."""
    if a is b:
        return True
    try:
        return _marshal(a, _MARSHAL_FORMAT) == _marshal(b, _MARSHAL_FORMAT)
    except ValueError:
        return False


def _names_only(flag: Flag, segments: Collection[str]) -> bool:
    """Whether every segment the flag's rules name is among `segments`."""
    return all(
        rule.segment is None or rule.segment in segments
        for config in flag.environments.values()
        for rule in config.rules
    )


def json_type(value: object) -> str:
    """The JSON type a variant value belongs to; a document's variants share one."""
    if isinstance(value, bool):
        return "boolean"
    if is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return "null" if value is None else type(value).__name__


def _non_negative_float(raw: object) -> float | None:
    """A number at least 0 that fits a float (JSON integers can have 400 digits)."""
    if not is_finite_number(raw) or cast(float, raw) < 0:
        return None
    try:
        return float(cast(float, raw))
    except OverflowError:
        return None


def _join(path: str, key: str) -> str:
    key = path_key(key)  # printable whatever the key holds
    return f"{path}.{key}" if path else key


class _Reader:
    """Walks raw data, collecting problems instead of stopping at the first one."""

    def __init__(self, previous: Sources | None = None) -> None:
        self.problems: list[Problem] = []
        self.previous = previous or Sources()

    def report(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def out_of_limits(self, raw: object, path: str, depth: int) -> bool:
        """Report what breaks the edge limits (`limits.py`) in a definition found at
        nesting `depth` of a document: text that is not valid Unicode or holds NUL,
        numbers that are not finite or beyond 64 bits, nesting, size. Such a definition
        is not read further: it could never be stored, exported or logged."""
        problems = json_problems(raw, path, max_depth=MAX_DEPTH - depth + 1)
        self.problems.extend(problems)
        return bool(problems)

    # --- generic shapes -----------------------------------------------------------------

    def mapping(
        self, value: object, path: str, fields: Collection[str] | None = None
    ) -> Mapping[str, object] | None:
        if not isinstance(value, Mapping):
            self.report(path, f"expected an object, got {describe(value)}")
            return None
        for key in value:
            if not isinstance(key, str):
                self.report(path, f"keys must be strings, got {describe(key)} {key!r}")
            elif fields is not None and key not in fields:
                self.report(
                    _join(path, key), f"unknown field; expected one of: {', '.join(fields)}"
                )
        return cast(Mapping[str, object], value)

    def sequence(self, value: object, path: str) -> Sequence[object] | None:
        if not isinstance(value, list | tuple):
            self.report(path, f"expected an array, got {describe(value)}")
            return None
        return value

    def string(self, value: object, path: str, *, nonempty: bool = True) -> str | None:
        if not isinstance(value, str):
            self.report(path, f"expected a string, got {describe(value)}")
            return None
        if nonempty and not value.strip():
            self.report(path, "must not be empty")
            return None
        return value

    def boolean(self, value: object, path: str) -> bool | None:
        if not isinstance(value, bool):
            self.report(path, f"expected true or false, got {describe(value)}")
            return None
        return value

    def key(self, value: object, path: str, what: str) -> str | None:
        if not isinstance(value, str) or not KEY_PATTERN.fullmatch(value):
            self.report(path, f"invalid {what} {value!r}: use {KEY_RULE} characters")
            return None
        return value

    def strings(self, value: object, path: str) -> tuple[str, ...]:
        items = self.sequence(value, path)
        if items is None:
            return ()
        found = (self.string(item, f"{path}[{i}]") for i, item in enumerate(items))
        return tuple(s for s in found if s is not None)

    def decimal(
        self, value: object, path: str, *, low: Decimal, high: Decimal | None, what: str
    ) -> Decimal | None:
        """A number in [low, high] with at most three decimals, kept exact."""
        if not is_finite_number(value):
            self.report(path, f"expected a number, got {describe(value)}")
            return None
        try:
            exact = Decimal(str(value))
        except InvalidOperation:  # pragma: no cover - str() of a finite number always parses
            self.report(path, f"not a number: {value!r}")
            return None
        if exact < low or (high is not None and exact > high):
            bound = f"from {low} to {high}" if high is not None else f"at least {low}"
            self.report(path, f"{what} {value} is out of range: must be {bound}")
            return None
        exponent = exact.normalize().as_tuple().exponent
        if isinstance(exponent, int) and exponent < -MAX_DECIMALS:
            self.report(path, f"{what} {value} has more than {MAX_DECIMALS} decimals")
            return None
        return exact

    # --- the document -------------------------------------------------------------------

    def document(self, data: object) -> Document:
        root = self.mapping(data, "", _TOP_FIELDS)
        if root is None:
            return Document()
        raw_segments = self.mapping(root.get("segments", {}), "segments") or {}
        segments = self.segments(raw_segments)
        raw_flags = self.mapping(root.get("flags", {}), "flags") or {}
        flags = self.flags(raw_flags, set(raw_segments))
        return Document(
            flags={key: flag for key, (_, flag) in flags.items()},
            segments={key: segment for key, (_, segment) in segments.items()},
            sources=Sources(flags=flags, segments=segments),
        )

    def segments(self, raw_segments: Mapping[str, object]) -> dict[str, tuple[object, Segment]]:
        """Each valid segment with the raw definition it came from."""
        parsed: dict[str, tuple[object, Segment]] = {}
        for key, raw in raw_segments.items():
            path = _join("segments", str(key))
            if self.key(key, path, "segment key") is None:
                continue
            segment = self.unchanged_segment(key, raw) or self.segment(key, raw, path)
            if segment is not None:
                parsed[key] = (raw, segment)
        return parsed

    def flags(
        self, raw_flags: Mapping[str, object], segments: set[str]
    ) -> dict[str, tuple[object, Flag]]:
        """Each valid flag with the raw definition it came from. `segments`: every key
        under `segments`, valid or not, so that a reference reports only a missing one."""
        parsed: dict[str, tuple[object, Flag]] = {}
        for key, raw in raw_flags.items():
            path = _join("flags", str(key))
            if self.key(key, path, "flag key") is None:
                continue
            flag = self.unchanged_flag(key, raw, segments) or self.flag(key, raw, path, segments)
            if flag is not None:
                parsed[key] = (raw, flag)
        return parsed

    def unchanged_segment(self, key: str, raw: object) -> Segment | None:
        """The previous parse of this very definition: a segment depends on nothing else."""
        entry = self.previous.segments.get(key)
        if entry is None or not identical_json(entry[0], raw):
            return None
        return entry[1]

    def unchanged_flag(self, key: str, raw: object, segments: set[str]) -> Flag | None:
        """The previous parse of this very definition. It was valid then, and a flag's
        validity depends on nothing else but the segments its rules name: when one of
        those is gone, parse again, so that the problem is reported as from scratch."""
        entry = self.previous.flags.get(key)
        if entry is None or not identical_json(entry[0], raw):
            return None
        flag = entry[1]
        return flag if _names_only(flag, segments) else None

    def segment(self, key: str, raw: object, path: str) -> Segment | None:
        if self.out_of_limits(raw, path, depth=3):
            return None
        body = self.mapping(raw, path, _SEGMENT_FIELDS)
        if body is None:
            return None
        include = self.strings(body.get("include", []), _join(path, "include"))
        exclude = self.strings(body.get("exclude", []), _join(path, "exclude"))
        when = self.clauses(body.get("when", []), _join(path, "when"))
        description = self.string(
            body.get("description", ""), _join(path, "description"), nonempty=False
        )
        return Segment(key, include, exclude, when, description or "")

    def flag(self, key: str, raw: object, path: str, segments: set[str]) -> Flag | None:
        if self.out_of_limits(raw, path, depth=3):
            return None
        body = self.mapping(raw, path, _FLAG_FIELDS)
        if body is None:
            return None
        variants = self.variants(body.get("variants"), _join(path, "variants"))
        names = {name for name, _ in variants}
        off_variant = self.off_variant(body, variants, path)
        salt = None
        if "salt" in body:
            salt = self.string(body["salt"], _join(path, "salt"))
        description = self.string(
            body.get("description", ""), _join(path, "description"), nonempty=False
        )
        tags = self.strings(body.get("tags", []), _join(path, "tags"))
        environments: dict[str, FlagEnvironment] = {}
        raw_envs = self.mapping(body.get("environments", {}), _join(path, "environments"))
        for env, raw_env in (raw_envs or {}).items():
            env_path = _join(_join(path, "environments"), str(env))
            if self.key(env, env_path, "environment name") is None:
                continue
            config = self.environment(raw_env, env_path, names, off_variant, segments)
            if config is not None:
                environments[env] = config
        if not variants or off_variant is None:
            return None
        return Flag(
            key=key,
            variants=variants,
            off_variant=off_variant,
            environments=environments,
            description=description or "",
            salt=salt,
            tags=tags,
        )

    def variants(self, raw: object, path: str) -> tuple[tuple[str, JsonValue], ...]:
        if raw is None:
            return _DEFAULT_VARIANTS
        body = self.mapping(raw, path)
        if body is None:
            return ()
        if not body:
            self.report(path, "a flag needs at least one variant")
            return ()
        variants: list[tuple[str, JsonValue]] = []
        types: dict[str, list[str]] = {}
        for name, value in body.items():
            if self.key(name, _join(path, str(name)), "variant name") is None:
                continue
            kind = json_type(value)
            if kind not in ("boolean", "number", "string", "object", "array"):
                self.report(_join(path, name), f"a variant value must be JSON data, got {kind}")
                continue
            if isinstance(value, float) and not math.isfinite(value):
                self.report(_join(path, name), "a variant value must be a finite number")
                continue
            types.setdefault(kind, []).append(name)
            variants.append((name, cast(JsonValue, value)))
        if len(types) > 1:
            mix = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in types.items())
            self.report(path, f"variant values must all be of one JSON type, got {mix}")
        return tuple(variants)

    def off_variant(
        self, body: Mapping[str, object], variants: tuple[tuple[str, JsonValue], ...], path: str
    ) -> str | None:
        names = [name for name, _ in variants]
        if "off_variant" not in body:
            if "off" in names:
                return "off"
            if variants:
                self.report(
                    _join(path, "off_variant"),
                    "required: the variant served when the flag is disabled "
                    "(it defaults to 'off' only when such a variant exists)",
                )
            return None
        return self.variant_ref(body["off_variant"], _join(path, "off_variant"), set(names))

    def variant_ref(self, value: object, path: str, names: set[str]) -> str | None:
        name = self.string(value, path)
        if name is None:
            return None
        if names and name not in names:
            self.report(path, f"unknown variant {name!r}; variants are: {', '.join(sorted(names))}")
            return None
        return name

    def environment(
        self,
        raw: object,
        path: str,
        variants: set[str],
        off_variant: str | None,
        segments: set[str],
    ) -> FlagEnvironment | None:
        body = self.mapping(raw, path, _ENV_FIELDS)
        if body is None:
            return None
        enabled = self.boolean(body.get("enabled", False), _join(path, "enabled"))
        rules = self.rules(
            body.get("rules", []), _join(path, "rules"), variants, off_variant, segments
        )
        if "fallthrough" in body:
            fallthrough = self.serve(
                body["fallthrough"], _join(path, "fallthrough"), variants, off_variant
            )
        else:
            fallthrough = Serve(variant=off_variant) if off_variant is not None else None
        ramp = None
        if "ramp" in body and body["ramp"] is not None:
            ramp = self.ramp(body["ramp"], _join(path, "ramp"))
            if fallthrough is not None and fallthrough.rollout is None:
                self.report(
                    _join(path, "ramp"),
                    "a ramp drives the fallthrough rollout: the fallthrough must serve a rollout",
                )
        if enabled is None or fallthrough is None or rules is None:
            return None
        return FlagEnvironment(enabled=enabled, fallthrough=fallthrough, rules=rules, ramp=ramp)

    def rules(
        self,
        raw: object,
        path: str,
        variants: set[str],
        off_variant: str | None,
        segments: set[str],
    ) -> tuple[Rule, ...] | None:
        items = self.sequence(raw, path)
        if items is None:
            return None
        rules: list[Rule] = []
        first_seen: dict[str, int] = {}
        for index, item in enumerate(items):
            rule_path = f"{path}[{index}]"
            body = self.mapping(item, rule_path, _RULE_FIELDS)
            if body is None:
                continue
            name = self.string(body.get("name"), _join(rule_path, "name"))
            if name is not None:
                if name in first_seen:
                    self.report(
                        _join(rule_path, "name"),
                        f"duplicate rule name {name!r} (also used by rules[{first_seen[name]}])",
                    )
                else:
                    first_seen[name] = index
            when = self.clauses(body.get("when", []), _join(rule_path, "when"))
            segment = None
            if body.get("segment") is not None:
                segment = self.string(body["segment"], _join(rule_path, "segment"))
                if segment is not None and segment not in segments:
                    known = ", ".join(sorted(segments)) or "none are defined"
                    self.report(
                        _join(rule_path, "segment"), f"unknown segment {segment!r} ({known})"
                    )
            if not body.get("when") and body.get("segment") is None:
                self.report(rule_path, "a rule needs `when` clauses or a `segment` to match on")
            if "serve" not in body:
                self.report(_join(rule_path, "serve"), "required")
                continue
            serve = self.serve(body["serve"], _join(rule_path, "serve"), variants, off_variant)
            if name is not None and serve is not None:
                rules.append(Rule(name=name, serve=serve, when=when, segment=segment))
        return tuple(rules)

    def clauses(self, raw: object, path: str) -> tuple[Clause, ...]:
        items = self.sequence(raw, path)
        if items is None:
            return ()
        clauses = (self.clause(item, f"{path}[{i}]") for i, item in enumerate(items))
        return tuple(c for c in clauses if c is not None)

    def clause(self, raw: object, path: str) -> Clause | None:
        body = self.mapping(raw, path, _CLAUSE_FIELDS)
        if body is None:
            return None
        attribute = self.string(body.get("attribute"), _join(path, "attribute"))
        op = body.get("op")
        if op not in OPERATORS:
            shown = repr(op) if isinstance(op, str) else describe(op)
            self.report(
                _join(path, "op"),
                f"unknown operator {shown}; operators are: {', '.join(OPERATORS)}",
            )
            op = None
        values = self.sequence(body.get("values", []), _join(path, "values"))
        if op is None or values is None:
            return None
        try:
            OPERATORS[str(op)].compile(values)
        except OperandError as exc:
            where = _join(path, "values") + (f"[{exc.index}]" if exc.index is not None else "")
            self.report(where, f"{op}: {exc.message}")
            return None
        if attribute is None:
            return None
        return Clause(attribute=attribute, op=str(op), values=tuple(cast(list[Scalar], values)))

    def serve(
        self, raw: object, path: str, variants: set[str], off_variant: str | None
    ) -> Serve | None:
        body = self.mapping(raw, path, _SERVE_FIELDS)
        if body is None:
            return None
        has_variant, has_rollout = "variant" in body, "rollout" in body
        if has_variant == has_rollout:
            self.report(path, "serve either `variant: NAME` or `rollout: {...}` (with `otherwise`)")
            return None
        if has_variant:
            if "otherwise" in body:
                self.report(_join(path, "otherwise"), "only a rollout has units outside it")
            variant = self.variant_ref(body["variant"], _join(path, "variant"), variants)
            return None if variant is None else Serve(variant=variant)
        rollout = self.rollout(body["rollout"], _join(path, "rollout"), variants)
        if "otherwise" in body:
            otherwise = self.variant_ref(body["otherwise"], _join(path, "otherwise"), variants)
        else:
            otherwise = off_variant
        if rollout is None or otherwise is None:
            return None
        return Serve(rollout=rollout, otherwise=otherwise)

    def rollout(self, raw: object, path: str, variants: set[str]) -> Rollout | None:
        body = self.mapping(raw, path, _ROLLOUT_FIELDS)
        if body is None:
            return None
        if "percentage" not in body:
            self.report(_join(path, "percentage"), "required")
            percentage = None
        else:
            percentage = self.decimal(
                body["percentage"],
                _join(path, "percentage"),
                low=Decimal(0),
                high=HUNDRED,
                what="percentage",
            )
        bucket_by = self.string(body.get("bucket_by", DEFAULT_BUCKET_BY), _join(path, "bucket_by"))
        weights = self.weights(body.get("variants"), _join(path, "variants"), variants)
        if percentage is None or bucket_by is None or weights is None:
            return None
        return Rollout(percentage=percentage, variants=weights, bucket_by=bucket_by)

    def weights(
        self, raw: object, path: str, variants: set[str]
    ) -> tuple[tuple[str, Decimal], ...] | None:
        if raw is None:
            self.report(
                path, "required: how units inside the rollout split among variants, e.g. {on: 100}"
            )
            return None
        body = self.mapping(raw, path)
        if body is None:
            return None
        weights: list[tuple[str, Decimal]] = []
        ok = True
        for name, weight in body.items():
            entry = _join(path, str(name))
            if self.variant_ref(name, entry, variants) is None:
                ok = False
                continue
            exact = self.decimal(weight, entry, low=Decimal(0), high=HUNDRED, what="weight")
            if exact is None:
                ok = False
                continue
            weights.append((name, exact))
        if not ok:
            return None
        total = sum((w for _, w in weights), Decimal(0))
        if total != HUNDRED:
            self.report(path, f"weights must sum to 100, got {total.normalize():f}")
            return None
        return tuple(weights)

    def ramp(self, raw: object, path: str) -> RampPlan | None:
        body = self.mapping(raw, path, _RAMP_FIELDS)
        if body is None:
            return None
        defaults = RampPlan()
        stages = self.stages(body.get("stages"), _join(path, "stages"), defaults.stages)
        duration = self.duration(body.get("min_stage_duration"), _join(path, "min_stage_duration"))
        min_samples = defaults.min_samples
        if "min_samples" in body:
            raw_samples = body["min_samples"]
            if not isinstance(raw_samples, int) or isinstance(raw_samples, bool) or raw_samples < 0:
                self.report(_join(path, "min_samples"), "expected a whole number, at least 0")
            else:
                min_samples = raw_samples
        guards = defaults.guards
        if "guards" in body:
            guards = self.guards(body["guards"], _join(path, "guards"))
        auto_advance = self.boolean(
            body.get("auto_advance", defaults.auto_advance), _join(path, "auto_advance")
        )
        approval_above = None
        if body.get("approval_above") is not None:
            approval_above = self.decimal(
                body["approval_above"],
                _join(path, "approval_above"),
                low=Decimal(0),
                high=HUNDRED,
                what="percentage",
            )
        watch = self.duration(body.get("watch_completed"), _join(path, "watch_completed"))
        on_breach = body.get("on_breach", defaults.on_breach)
        if on_breach not in _ON_BREACH:
            self.report(_join(path, "on_breach"), f"expected one of: {', '.join(_ON_BREACH)}")
            return None
        if stages is None or auto_advance is None:
            return None
        return RampPlan(
            stages=stages,
            min_stage_duration=defaults.min_stage_duration if duration is None else duration,
            min_samples=min_samples,
            guards=guards,
            auto_advance=auto_advance,
            on_breach=cast(Literal["rollback", "step_back"], on_breach),
            approval_above=approval_above,
            watch_completed=defaults.watch_completed if watch is None else watch,
        )

    def stages(
        self, raw: object, path: str, default: tuple[Decimal, ...]
    ) -> tuple[Decimal, ...] | None:
        if raw is None:
            return default
        items = self.sequence(raw, path)
        if items is None:
            return None
        if not items:
            self.report(path, "a ramp needs at least one stage")
            return None
        stages: list[Decimal] = []
        for index, item in enumerate(items):
            stage = self.decimal(
                item, f"{path}[{index}]", low=Decimal("0.001"), high=HUNDRED, what="stage"
            )
            if stage is None:
                return None
            if stages and stage <= stages[-1]:
                self.report(f"{path}[{index}]", "stages must rise: each above the one before")
                return None
            stages.append(stage)
        if stages[0] > 5:
            self.report(f"{path}[0]", "the first stage must be from 0.001 to 5 percent")
            return None
        if stages[-1] != HUNDRED:
            self.report(path, "the last stage must be 100: a completed ramp serves everyone")
            return None
        return tuple(stages)

    def non_negative(self, raw: object, path: str) -> float | None:
        value = _non_negative_float(raw)
        if value is None:
            self.report(path, "expected a number, at least 0")
        return value

    def duration(self, raw: object, path: str) -> float | None:
        if raw is None:
            return None
        if is_number(raw):
            seconds = _non_negative_float(raw)
        else:
            seconds = parse_duration(raw) if isinstance(raw, str) else None
        if seconds is None:
            self.report(path, f"expected a duration like '30s', '10m' or '2h', got {raw!r}")
        return seconds

    def guards(self, raw: object, path: str) -> tuple[Guard, ...]:
        items = self.sequence(raw, path)
        guards = (self.guard(item, f"{path}[{i}]") for i, item in enumerate(items or ()))
        return tuple(g for g in guards if g is not None)

    def guard(self, raw: object, path: str) -> Guard | None:
        if isinstance(raw, Mapping) and "kpi" in raw:
            return self.kpi(raw, path)
        body = self.mapping(raw, path, _GUARD_FIELDS)
        if body is None:
            return None
        kind = body.get("kind", "absolute")
        if kind not in _GUARD_KINDS:
            self.report(_join(path, "kind"), f"expected one of: {', '.join(_GUARD_KINDS)}")
            return None
        text: dict[str, str | None] = {}
        for field in ("metric", "name", "query", "url"):
            text[field] = (
                None if body.get(field) is None else self.string(body[field], _join(path, field))
            )
        needed = {
            "absolute": "metric",
            "relative": "metric",
            "prometheus": "query",
            "webhook": "name",
        }
        if body.get(needed[kind]) is None:
            self.report(_join(path, needed[kind]), f"required by a guard of kind {kind!r}")
        metric = text["metric"]
        if metric is not None:
            self.metric(metric, _join(path, "metric"))
        if text["name"] is not None and not KEY_PATTERN.fullmatch(text["name"]):
            self.report(_join(path, "name"), f"use {KEY_RULE} characters")
        limits = {
            field: None
            if body.get(field) is None
            else self.non_negative(body[field], _join(path, field))
            for field in ("max", "warn")
        }
        high, warn = limits["max"], limits["warn"]
        if kind != "webhook" and "max" not in body and "warn" not in body:
            self.report(path, "a guard needs a `max` (roll back) or `warn` (pause) level")
        elif high is not None and warn is not None and warn >= high:
            self.report(_join(path, "warn"), "must be below `max`")
        if (
            kind == "absolute"
            and high is not None
            and high > 1
            and metric is not None
            and metric.endswith(RATE_SUFFIX)
        ):
            self.report(_join(path, "max"), "a rate is at most 1 (0.01 is 1%)")
        return Guard(
            kind=cast(GuardKind, kind),
            metric=metric,
            max=high,
            warn=warn,
            name=text["name"],
            query=text["query"],
            url=text["url"],
        )

    def metric(self, metric: str, path: str) -> None:
        event = metric.removesuffix(RATE_SUFFIX)
        if not KEY_PATTERN.fullmatch(event) or len(event) > _MAX_EVENT:
            self.report(
                path,
                "a metric is `<event>_rate` (that event over `request` events, e.g. "
                "error_rate) or `<event>` (its tracked values per request, e.g. latency), "
                f"the event in {KEY_RULE.replace('128', str(_MAX_EVENT))} characters",
            )
        elif event == "request":
            self.report(path, "every request is a `request`: measure another event against it")

    def kpi(self, raw: Mapping[object, object], path: str) -> Guard | None:
        """`{kpi: latency}`: a relative guard at the seed's KPI levels."""
        body = self.mapping(raw, path, _KPI_FIELDS)
        if body is None:
            return None
        metric = self.string(body["kpi"], _join(path, "kpi"))
        name = None if body.get("name") is None else self.string(body["name"], _join(path, "name"))
        if metric is None:
            return None
        self.metric(metric, _join(path, "kpi"))
        if name is not None and not KEY_PATTERN.fullmatch(name):
            self.report(_join(path, "name"), f"use {KEY_RULE} characters")
        return Guard(kind="relative", metric=metric, max=KPI_MAX, warn=KPI_WARN, name=name)


def ramp_write_problems(data: object) -> list[Problem]:
    """What a ramp plan may not say when it is written, though a stored one that says it
    still parses (so that a plan saved by an earlier version never breaks a rebuild or an
    SDK): `guards: []` (nothing would ever stop the ramp) and `min_samples: 0`."""
    problems: list[Problem] = []
    flags = data.get("flags") if isinstance(data, Mapping) else None
    for key, flag in flags.items() if isinstance(flags, Mapping) else ():
        envs = flag.get("environments") if isinstance(flag, Mapping) else None
        for env, config in envs.items() if isinstance(envs, Mapping) else ():
            ramp = config.get("ramp") if isinstance(config, Mapping) else None
            if not isinstance(ramp, Mapping):
                continue
            path = f"flags.{key}.environments.{env}.ramp"
            problems.extend(_ramp_write_problems(ramp, path))
    return problems


def _ramp_write_problems(ramp: Mapping[object, object], path: str) -> list[Problem]:
    problems = []
    if ramp.get("guards") == []:
        problems.append(
            Problem(
                _join(path, "guards"),
                "a ramp needs at least one guard: leave `guards` out for the default set",
            )
        )
    samples = ramp.get("min_samples")
    if samples == 0 and not isinstance(samples, bool):
        problems.append(
            Problem(
                _join(path, "min_samples"),
                "must be at least 1: a stage needs exposures before it may advance",
            )
        )
    return problems


# --- writing ------------------------------------------------------------------------------


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _dump_clauses(clauses: tuple[Clause, ...]) -> list[JsonValue]:
    out: list[JsonValue] = []
    for clause in clauses:
        item: dict[str, JsonValue] = {"attribute": clause.attribute, "op": clause.op}
        if clause.values:
            item["values"] = list(clause.values)
        out.append(item)
    return out


def _dump_serve(serve: Serve) -> dict[str, JsonValue]:
    if serve.rollout is None:
        return {"variant": serve.variant}
    rollout = serve.rollout
    return {
        "rollout": {
            "percentage": _number(rollout.percentage),
            "bucket_by": rollout.bucket_by,
            "variants": {name: _number(weight) for name, weight in rollout.variants},
        },
        "otherwise": serve.otherwise,
    }


def _dump_ramp(ramp: RampPlan) -> dict[str, JsonValue]:
    guards: list[JsonValue] = []
    for guard in ramp.guards:
        item: dict[str, JsonValue] = {} if guard.kind == "absolute" else {"kind": guard.kind}
        for field in ("metric", "max", "warn", "name", "query", "url"):
            value = getattr(guard, field)
            if value is not None:
                item[field] = value
        guards.append(item)
    out: dict[str, JsonValue] = {
        "stages": [_number(s) for s in ramp.stages],
        "min_stage_duration": format_duration(ramp.min_stage_duration),
        "min_samples": ramp.min_samples,
        "guards": guards,
        "auto_advance": ramp.auto_advance,
        "on_breach": ramp.on_breach,
    }
    if ramp.approval_above is not None:
        out["approval_above"] = _number(ramp.approval_above)
    # Left out at its default, so a plan that does not set it stays readable by SDKs
    # from before the field (they parse the whole configuration they are served).
    if ramp.watch_completed != RampPlan().watch_completed:
        out["watch_completed"] = format_duration(ramp.watch_completed)
    return out


def _dump_environment(env: FlagEnvironment) -> dict[str, JsonValue]:
    rules: list[JsonValue] = []
    for rule in env.rules:
        item: dict[str, JsonValue] = {"name": rule.name}
        if rule.when:
            item["when"] = _dump_clauses(rule.when)
        if rule.segment is not None:
            item["segment"] = rule.segment
        item["serve"] = _dump_serve(rule.serve)
        rules.append(item)
    out: dict[str, JsonValue] = {
        "enabled": env.enabled,
        "rules": rules,
        "fallthrough": _dump_serve(env.fallthrough),
    }
    if env.ramp is not None:
        out["ramp"] = _dump_ramp(env.ramp)
    return out


def _dump_flag(flag: Flag) -> dict[str, JsonValue]:
    out: dict[str, JsonValue] = {}
    if flag.description:
        out["description"] = flag.description
    if flag.tags:
        out["tags"] = list(flag.tags)
    if flag.salt is not None:
        out["salt"] = flag.salt
    out["variants"] = dict(flag.variants)
    out["off_variant"] = flag.off_variant
    out["environments"] = {env: _dump_environment(c) for env, c in flag.environments.items()}
    return out


def _dump_segment(segment: Segment) -> dict[str, JsonValue]:
    out: dict[str, JsonValue] = {}
    if segment.description:
        out["description"] = segment.description
    if segment.include:
        out["include"] = list(segment.include)
    if segment.exclude:
        out["exclude"] = list(segment.exclude)
    if segment.when:
        out["when"] = _dump_clauses(segment.when)
    return out
