"""Parsing and compiling from the previous result must be indistinguishable from doing it
from scratch.

The property tests apply random sequences of edits to a document, the way configs
change (a flag edited, toggled, added or deleted; a segment a flag uses changed or
deleted; variants reordered; a boolean written as a number), and after every edit
compare the incremental result with a build from scratch: the same parsed document, or
the same problems in the same order, and the same evaluation for every flag and many
contexts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from graylane.core import (
    Document,
    DocumentError,
    Snapshot,
    compile_document,
    evaluate,
    parse_document,
)
from graylane.core.document import identical_json

ENV = "production"
OTHER_ENV = "staging"
COUNTRIES = ("DE", "FR", "US", "JP")
PLANS = ("free", "pro", "team")
SEGMENT_KEYS = ("beta", "staff", "vip")
FLAG_KEYS = ("checkout", "search", "banner", "pricing", "dark-mode")
UNITS = tuple(f"user-{i}" for i in range(12))

Raw = dict[str, Any]

# --- contexts ----------------------------------------------------------------------------


def _contexts() -> list[dict[str, object]]:
    """Contexts that reach every branch: each unit with varied attributes, units that
    segments include or exclude, and contexts missing the attributes rules look at."""
    contexts: list[dict[str, object]] = []
    for i, unit in enumerate(UNITS):
        contexts.append(
            {
                "targetingKey": unit,
                "country": COUNTRIES[i % len(COUNTRIES)],
                "plan": PLANS[i % len(PLANS)],
                "age": 15 + 7 * i,
            }
        )
        contexts.append({"targetingKey": unit, "plan": PLANS[(i + 1) % len(PLANS)]})
    contexts += [{}, {"country": "DE"}, {"targetingKey": 7, "age": 40}, {"targetingKey": None}]
    contexts += [{"targetingKey": f"other-{i}", "age": i} for i in range(0, 100, 9)]
    return contexts


CONTEXTS = _contexts()

# --- raw definitions -----------------------------------------------------------------------

percentages = st.one_of(
    st.sampled_from([0, 100, 50]),
    st.integers(min_value=0, max_value=100_000).map(
        lambda t: t // 1000 if t % 1000 == 0 else t / 1000
    ),
)
clauses = st.one_of(
    st.builds(
        lambda values: {"attribute": "country", "op": "in", "values": values},
        st.lists(st.sampled_from(COUNTRIES), min_size=1, max_size=3, unique=True),
    ),
    st.builds(
        lambda plan: {"attribute": "plan", "op": "in", "values": [plan]},
        st.sampled_from(PLANS),
    ),
    st.builds(
        lambda age: {"attribute": "age", "op": "gte", "values": [age]},
        st.integers(min_value=10, max_value=100),
    ),
)


@st.composite
def segments(draw: st.DrawFn) -> Raw:
    segment: Raw = {}
    if draw(st.booleans()):
        segment["include"] = draw(st.lists(st.sampled_from(UNITS), max_size=3, unique=True))
    if draw(st.booleans()):
        segment["exclude"] = draw(st.lists(st.sampled_from(UNITS), max_size=2, unique=True))
    if draw(st.booleans()):
        segment["when"] = draw(st.lists(clauses, min_size=1, max_size=2))
    return segment


@st.composite
def serves(draw: st.DrawFn, variants: list[str]) -> Raw:
    if draw(st.booleans()):
        return {"variant": draw(st.sampled_from(variants))}
    chosen = draw(st.lists(st.sampled_from(variants), min_size=1, unique=True))
    weights = draw(st.lists(st.integers(0, 100), min_size=len(chosen), max_size=len(chosen)))
    scaled = [100 * w // max(1, sum(weights)) for w in weights]
    scaled[-1] += 100 - sum(scaled)
    return {
        "rollout": {
            "percentage": draw(percentages),
            "bucket_by": draw(st.sampled_from(["targetingKey", "targetingKey", "plan"])),
            "variants": dict(zip(chosen, scaled, strict=True)),
        },
        "otherwise": draw(st.sampled_from(variants)),
    }


@st.composite
def rules(draw: st.DrawFn, variants: list[str], segment_keys: list[str]) -> Raw:
    rule: Raw = {"name": "r"}  # renamed by the caller: names must be unique
    if segment_keys and draw(st.booleans()):
        rule["segment"] = draw(st.sampled_from(segment_keys))
    if "segment" not in rule or draw(st.booleans()):
        rule["when"] = draw(st.lists(clauses, min_size=1, max_size=2))
    rule["serve"] = draw(serves(variants))
    return rule


@st.composite
def flags(draw: st.DrawFn, segment_keys: list[str]) -> Raw:
    kind = draw(st.sampled_from(["boolean", "string"]))
    if kind == "boolean":
        flag: Raw = {}
        variants = ["on", "off"]
    else:
        variants = draw(st.permutations(["a", "b", "c", "off"]))
        flag = {"variants": {name: f"value-{name}" for name in variants}, "off_variant": "off"}
    if draw(st.booleans()):
        flag["salt"] = draw(st.sampled_from(["s1", "s2"]))
    environments: Raw = {}
    for env in (ENV, OTHER_ENV):
        if draw(st.integers(0, 3)) == 0:
            continue
        drawn = draw(st.lists(rules(variants, segment_keys), max_size=3))
        config: Raw = {
            "enabled": draw(st.booleans()),
            "rules": [{**rule, "name": f"rule-{i}"} for i, rule in enumerate(drawn)],
        }
        if draw(st.booleans()):
            config["fallthrough"] = draw(serves(variants))
        environments[env] = config
    flag["environments"] = environments
    return flag


@st.composite
def documents(draw: st.DrawFn) -> Raw:
    keys = draw(st.lists(st.sampled_from(SEGMENT_KEYS), unique=True))
    raw_segments = {key: draw(segments()) for key in keys}
    flag_keys = draw(st.lists(st.sampled_from(FLAG_KEYS), min_size=1, unique=True))
    return {
        "flags": {key: draw(flags(keys)) for key in flag_keys},
        "segments": raw_segments,
    }


# --- edits ---------------------------------------------------------------------------------
# Each edit returns a new document: unchanged definitions stay the very same objects (as
# the server keeps them); nothing held by an earlier parse is changed in place.


def _with_flag(raw: Raw, key: str, definition: Raw | None) -> Raw:
    flags = dict(raw["flags"])
    if definition is None:
        flags.pop(key, None)
    else:
        flags[key] = definition
    return {**raw, "flags": flags}


def _with_segment(raw: Raw, key: str, definition: Raw | None) -> Raw:
    found = dict(raw["segments"])
    if definition is None:
        found.pop(key, None)
    else:
        found[key] = definition
    return {**raw, "segments": found}


def _copy(value: Raw) -> Raw:
    return json.loads(json.dumps(value))


@st.composite
def edits(draw: st.DrawFn, raw: Raw) -> Raw:
    segment_keys = list(raw["segments"])
    flag_keys = list(raw["flags"])
    choice = draw(
        st.sampled_from(
            [
                "change-flag",
                "toggle",
                "delete-flag",
                "add-flag",
                "change-segment",
                "delete-segment",
                "add-segment",
                "reorder-variants",
                "number-for-boolean",
                "nothing",
            ]
        )
    )
    if choice == "change-flag" and flag_keys:
        return _with_flag(raw, draw(st.sampled_from(flag_keys)), draw(flags(segment_keys)))
    if choice == "toggle" and flag_keys:
        key = draw(st.sampled_from(flag_keys))
        flag = _copy(raw["flags"][key])
        config = flag["environments"].setdefault(ENV, {"enabled": False})
        config["enabled"] = not config.get("enabled", False)
        return _with_flag(raw, key, flag)
    if choice == "delete-flag" and flag_keys:
        return _with_flag(raw, draw(st.sampled_from(flag_keys)), None)
    if choice == "add-flag":
        key = draw(st.sampled_from([*FLAG_KEYS, "late-1", "late-2"]))
        return _with_flag(raw, key, draw(flags(segment_keys)))
    if choice == "change-segment" and segment_keys:
        return _with_segment(raw, draw(st.sampled_from(segment_keys)), draw(segments()))
    if choice == "delete-segment" and segment_keys:
        return _with_segment(raw, draw(st.sampled_from(segment_keys)), None)
    if choice == "add-segment":
        return _with_segment(raw, draw(st.sampled_from(SEGMENT_KEYS)), draw(segments()))
    if choice == "reorder-variants" and flag_keys:
        # Equal under ==, yet the order of variants decides who gets which.
        key = draw(st.sampled_from(flag_keys))
        flag = _copy(raw["flags"][key])
        flag["variants"] = dict(reversed(list(flag.get("variants", {"on": True}).items())))
        if "off" not in flag["variants"]:
            flag["variants"]["off"] = False
        return _with_flag(raw, key, flag)
    if choice == "number-for-boolean" and flag_keys:
        # 1 == True: a comparison by == alone would miss that this is no longer valid.
        key = draw(st.sampled_from(flag_keys))
        flag = _copy(raw["flags"][key])
        config = flag["environments"].setdefault(ENV, {})
        config["enabled"] = 1 if config.get("enabled") else 0
        return _with_flag(raw, key, flag)
    return raw


# --- comparing -----------------------------------------------------------------------------


def _parse(raw: Raw, previous: Document | None) -> Document | list[tuple[str, str]]:
    """The document, or its problems as (path, message) in order."""
    try:
        return parse_document(raw, previous=previous)
    except DocumentError as exc:
        return [(p.path, p.message) for p in exc.problems]


def assert_same_evaluations(incremental: Snapshot, scratch: Snapshot) -> None:
    assert incremental.flags.keys() == scratch.flags.keys()
    for key in [*scratch.flags, "no-such-flag"]:
        for context in CONTEXTS:
            got, want = evaluate(incremental, key, context), evaluate(scratch, key, context)
            # repr: a value of 1 is not True, nor 1.0.
            assert repr(got) == repr(want), (key, context)


def check_step(
    raw: Raw, held: tuple[Document, dict[str, Snapshot]] | None
) -> tuple[Document, dict[str, Snapshot]] | None:
    """Compare one edit's incremental build with a from-scratch one; return what an
    incremental builder holds afterwards (the last valid document and its snapshots)."""
    scratch = _parse(_copy(raw), None)
    incremental = _parse(raw, None if held is None else held[0])
    if isinstance(scratch, list):
        event("an edit made the document invalid")
        assert incremental == scratch
        return held
    assert isinstance(incremental, Document)
    assert repr(incremental) == repr(scratch)
    snapshots = {}
    for env in (ENV, OTHER_ENV):
        previous = None if held is None else held[1][env]
        snapshot = compile_document(incremental, env, version="2", previous=previous)
        assert_same_evaluations(snapshot, compile_document(scratch, env, version="2"))
        snapshots[env] = snapshot
        if previous is not None and any(
            previous.flags.get(key) is flag for key, flag in snapshot.flags.items()
        ):
            event("compiled flags taken over")
    return incremental, snapshots


@settings(max_examples=150, deadline=None)
@given(st.data(), documents(), st.integers(min_value=1, max_value=8))
def test_incremental_builds_match_builds_from_scratch(
    data: st.DataObject, raw: Raw, steps: int
) -> None:
    held = check_step(raw, None)
    for _ in range(steps):
        raw = data.draw(edits(raw))
        if data.draw(st.booleans()):
            raw = _copy(raw)  # as an SDK gets it: equal data, all new objects
        held = check_step(raw, held)


@settings(max_examples=100, deadline=None)
@given(documents(), documents())
def test_a_document_parsed_after_an_unrelated_one_is_unaffected(first: Raw, second: Raw) -> None:
    previous = _parse(first, None)
    if not isinstance(previous, Document):
        return
    scratch = _parse(second, None)
    incremental = _parse(second, previous)
    assert repr(incremental) == repr(scratch)


# --- what is kept --------------------------------------------------------------------------

BASE: Raw = {
    "flags": {
        "plain": {"environments": {ENV: {"enabled": True, "fallthrough": {"variant": "on"}}}},
        "targeted": {
            "environments": {
                ENV: {
                    "enabled": True,
                    "rules": [{"name": "beta", "segment": "beta", "serve": {"variant": "on"}}],
                }
            }
        },
    },
    "segments": {"beta": {"include": ["user-1"]}},
}


def _build(raw: Raw, previous: Snapshot | None = None) -> Snapshot:
    document = parse_document(raw, previous=None if previous is None else previous.document)
    return compile_document(document, ENV, previous=previous)


def test_unchanged_flags_and_segments_are_kept_as_they_are() -> None:
    before = _build(_copy(BASE))
    edited = _copy(BASE)
    edited["flags"]["plain"]["environments"][ENV]["enabled"] = False
    after = _build(edited, before)
    assert after.document.flags["targeted"] is before.document.flags["targeted"]
    assert after.document.segments["beta"] is before.document.segments["beta"]
    assert after.flags["targeted"] is before.flags["targeted"]
    assert after.flags["plain"] is not before.flags["plain"]
    assert evaluate(after, "plain", {}).reason == "DISABLED"


def test_a_changed_segment_recompiles_the_flags_that_use_it() -> None:
    before = _build(_copy(BASE))
    edited = _copy(BASE)
    edited["segments"]["beta"]["include"] = ["user-2"]
    after = _build(edited, before)
    assert after.document.flags["targeted"] is before.document.flags["targeted"]
    assert after.flags["targeted"] is not before.flags["targeted"]
    assert after.flags["plain"] is before.flags["plain"]
    assert evaluate(after, "targeted", {"targetingKey": "user-2"}).rule == "beta"


def test_a_deleted_segment_is_reported_where_a_parse_from_scratch_reports_it() -> None:
    previous = parse_document(_copy(BASE))
    edited = _copy(BASE)
    del edited["segments"]["beta"]
    with pytest.raises(DocumentError) as scratch:
        parse_document(_copy(edited))
    with pytest.raises(DocumentError) as incremental:
        parse_document(edited, previous=previous)
    assert incremental.value.problems == scratch.value.problems
    assert [p.path for p in incremental.value.problems] == [
        "flags.targeted.environments.production.rules[0].segment"
    ]


def test_a_snapshot_of_another_environment_is_not_taken_over() -> None:
    document = parse_document(_copy(BASE))
    elsewhere = compile_document(document, OTHER_ENV)
    here = compile_document(document, ENV, previous=elsewhere)
    assert here.flags["plain"] is not elsewhere.flags["plain"]
    assert evaluate(here, "plain", {}).variant == "on"
    assert evaluate(elsewhere, "plain", {}).variant == "off"


# --- identical JSON ------------------------------------------------------------------------

Same = Callable[[object, object], bool]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"enabled": True}, {"enabled": 1}),
        ({"v": 1}, {"v": 1.0}),
        ({"v": 0.0}, {"v": -0.0}),
        ({"on": 50, "off": 50}, {"off": 50, "on": 50}),
        ({"1": "x"}, {1: "x"}),
        (["a", "b"], ["b", "a"]),
        ({"a": [1]}, {"a": (1,)}),
    ],
)
def test_identical_json_tells_apart_what_equality_does_not(a: object, b: object) -> None:
    assert not identical_json(a, b)


def test_identical_json_holds_for_equal_data_in_new_objects() -> None:
    assert identical_json(_copy(BASE), _copy(BASE))


def test_identical_json_refuses_what_is_not_json_data() -> None:
    class Definition(dict[str, object]):
        pass

    assert not identical_json(Definition(a=1), Definition(a=1))
    definition = Definition(a=1)
    assert identical_json(definition, definition)  # the very same object
