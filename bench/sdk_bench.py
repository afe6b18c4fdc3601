"""The Graylane SDK next to the popular Python flag SDKs, all evaluating locally.

    python bench/sdk_bench.py              # full run (about 1.5 minutes, plus a one-time setup)
    python bench/sdk_bench.py --quick      # a few seconds of timing, rougher numbers
    python bench/sdk_bench.py --no-peers   # Graylane and the floor only, no setup

The three flags of `bench/cases.py` (A on for everyone, B 10% rollout, C rule
`country in [US, CA, DE] and plan in [pro]` else 25% rollout) are configured the same way
in every SDK and asked for the same 10,000 pre-built contexts. In ONE process, side by
side, with the same loop and call overhead for every row (`fn(*args)` over pre-built
argument tuples, in chunks of 500 calls that every row times in turn, best of 5 rounds per
chunk, garbage collector off):

  floor: dict + mmh3        a dict lookup plus contract 2's bucket hash, nothing else
  ref: graylane core resolve
                            the pure core under the client: what is_enabled adds is the
                            client's own work (error handling, per-variant counts)
  graylane is_enabled       Client.from_document(...).is_enabled(key, ctx)
  graylane evaluate         Client.evaluate: the full result with the rollout bucket
  openfeature + graylane    OpenFeature client get_boolean_value, GraylaneProvider(client)
  unleash is_enabled        UnleashClient, bootstrapped feature set, no server
  growthbook is_on          GrowthBook with a features dict, set_attributes + is_on
  flagsmith is_enabled      Flagsmith offline mode, LocalFileHandler environment document
  ref: openfeature no-op    the OpenFeature SDK with its no-op provider: the SDK's own cost

The three peers are not dependencies of Graylane. They are installed, once, into a
throwaway virtualenv under ~/.cache/graylane-bench/peers-venv (with Graylane installed
there in editable mode), and the measurement re-runs itself with that venv's Python.
Everything they would send over the network is switched off; see PEER_SETUP below.

Also measured: the resident memory of a process holding a Client with 10,000 flags (a
mix of static flags, rollouts, multi-variant splits and targeting rules, in the shape the
server sends an SDK) minus a process that imported the same modules, and how long it
takes to turn that config into a serving client.

Goals: Graylane's client path within 3x of the floor, and at least 10x faster than the
fastest peer, on every case.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from cases import (
    CASES,
    DOCUMENT,
    ENV,
    LAUNCH_COUNTRIES,
    ROLLOUT_B,
    ROLLOUT_C,
    RULE_PLANS,
    Context,
    best_per_call,
    best_per_call_chunked,
    best_seconds,
    dict_and_mmh3,
    expected_on_share,
    large_document,
    make_contexts,
    run_args,
)
from graylane import Client
from graylane.core import compile_document, parse_document, resolve

REPO = Path(__file__).resolve().parent.parent
PEER_PACKAGES = ("UnleashClient==6.9.1", "growthbook==4.0.0", "flagsmith==6.3.0")
"""Pinned so a rerun measures the same code; bump them deliberately."""
PEERS_VENV = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / "graylane-bench"
    / "peers-venv"
)
MARKER = "graylane-bench.json"

FLOOR = "floor: dict + mmh3"
GRAYLANE = "graylane is_enabled"
GOAL_FLOOR_RATIO = 3.0
GOAL_PEER_SPEEDUP = 10.0
MEMORY_FLAGS = 10_000

PEER_SETUP = """\
how the peers are configured (as fair as their APIs allow):
  unleash     UnleashClient(disable_metrics=True, disable_registration=True), an in-memory
              cache bootstrapped with the feature set, initialize_client(fetch_toggles=False):
              no server is contacted. Strategies: `default` (A), `flexibleRollout` (gradual
              rollout, stickiness userId) at 10% (B), and for C a `default` strategy with
              constraints country IN [US,CA,DE] and plan IN [pro] before a 25% flexibleRollout.
              Its is_enabled still counts each call in the engine (as Graylane's does).
  growthbook  one GrowthBook(features=...) instance, no api_host/client_key (nothing fetched),
              no tracking or feature-usage callbacks; per call set_attributes(ctx) + is_on(key)
              (cheaper than the documented instance-per-request pattern). Rules: defaultValue
              true (A); force true with coverage 0.10 on `id` (B); a condition rule
              {country: {$in: ...}, plan: {$in: [pro]}} forcing true, then force true with
              coverage 0.25 (C).
  flagsmith   Flagsmith(offline_mode=True, offline_handler=LocalFileHandler(document)), analytics
              and events off (their defaults); per call get_identity_flags(id, traits)
              .is_feature_enabled(key). Environment document: A enabled; B off with a segment
              override for a PERCENTAGE_SPLIT 10 segment; C off with overrides for the segment
              country IN US,CA,DE + plan IN pro (priority 0) and a PERCENTAGE_SPLIT 25 segment.
  graylane    Client.from_document (no server); its per-variant counts stay on, as in production.
Contexts are converted to each SDK's shape before timing; only the call is timed."""


# --- the peers' configurations: the same three flags -----------------------------------


def unleash_features() -> dict[str, Any]:
    def rollout(percentage: int, group: str) -> dict[str, Any]:
        return {
            "name": "flexibleRollout",
            "parameters": {"rollout": str(percentage), "stickiness": "userId", "groupId": group},
        }

    def feature(name: str, strategies: list[dict[str, Any]]) -> dict[str, Any]:
        return {"name": name, "type": "release", "enabled": True, "strategies": strategies}

    targeted_rule = {
        "name": "default",
        "parameters": {},
        "constraints": [
            {"contextName": "country", "operator": "IN", "values": LAUNCH_COUNTRIES},
            {"contextName": "plan", "operator": "IN", "values": RULE_PLANS},
        ],
    }
    return {
        "version": 2,
        "features": [
            feature("everyone", [{"name": "default", "parameters": {}}]),
            feature("ten-percent", [rollout(ROLLOUT_B, "ten-percent")]),
            feature("targeted", [targeted_rule, rollout(ROLLOUT_C, "targeted")]),
        ],
    }


def growthbook_features() -> dict[str, Any]:
    return {
        "everyone": {"defaultValue": True},
        "ten-percent": {
            "defaultValue": False,
            "rules": [{"force": True, "coverage": ROLLOUT_B / 100, "hashAttribute": "id"}],
        },
        "targeted": {
            "defaultValue": False,
            "rules": [
                {
                    "condition": {
                        "country": {"$in": LAUNCH_COUNTRIES},
                        "plan": {"$in": RULE_PLANS},
                    },
                    "force": True,
                },
                {"force": True, "coverage": ROLLOUT_C / 100, "hashAttribute": "id"},
            ],
        },
    }


def flagsmith_environment() -> dict[str, Any]:
    def state(feature_id: int, name: str, enabled: bool, priority: int | None = None) -> Any:
        uid = f"00000000-0000-4000-8000-{feature_id:06d}{(priority or 0) + 1:06d}"
        out: dict[str, Any] = {
            "enabled": enabled,
            "feature": {"id": feature_id, "name": name, "type": "STANDARD"},
            "feature_state_value": None,
            "featurestate_uuid": uid,
            "multivariate_feature_state_values": [],
        }
        if priority is not None:
            out["feature_segment"] = {"priority": priority}
        return out

    def segment(segment_id: int, name: str, conditions: list[Any], override: Any) -> Any:
        rule = {"type": "ALL", "rules": [], "conditions": conditions}
        return {"id": segment_id, "name": name, "rules": [rule], "feature_states": [override]}

    def condition(operator: str, prop: str, value: str) -> dict[str, str]:
        return {"operator": operator, "property_": prop, "value": value}

    split = "PERCENTAGE_SPLIT"
    return {
        "api_key": "graylane-bench",
        "name": ENV,
        "feature_states": [
            state(1, "everyone", True),
            state(2, "ten-percent", False),
            state(3, "targeted", False),
        ],
        "identity_overrides": [],
        "project": {
            "segments": [
                segment(
                    1,
                    "ten-percent-rollout",
                    [condition(split, "", str(ROLLOUT_B))],
                    state(2, "ten-percent", True, 0),
                ),
                segment(
                    2,
                    "pro-in-launch-countries",
                    [
                        condition("IN", "country", ",".join(LAUNCH_COUNTRIES)),
                        condition("IN", "plan", ",".join(RULE_PLANS)),
                    ],
                    state(3, "targeted", True, 0),
                ),
                segment(
                    3,
                    "targeted-rollout",
                    [condition(split, "", str(ROLLOUT_C))],
                    state(3, "targeted", True, 1),
                ),
            ]
        },
    }


# --- the rows: one entry point each, with its own argument tuples -----------------------


@dataclass
class Impl:
    name: str
    fn: Callable[..., object]
    args: Callable[[str, Context], tuple[Any, ...]]
    """The argument tuple for one call, from the flag key and the shared context."""
    on: Callable[[object], bool] | None
    """Whether a call's result means `on` (None for the floor)."""
    peer: bool = False
    reference: bool = False


def graylane_impls() -> tuple[list[Impl], Client]:
    client = Client.from_document(DOCUMENT, ENV)
    snapshot = compile_document(parse_document(DOCUMENT), ENV)  # what the client holds
    impls = [
        Impl(FLOOR, dict_and_mmh3, lambda key, ctx: (None, key, ctx), None),
        Impl(
            "ref: graylane core resolve",
            resolve,
            lambda key, ctx: (snapshot, key, ctx),
            lambda result: result.value is True,  # type: ignore[attr-defined]
            reference=True,
        ),
        Impl(GRAYLANE, client.is_enabled, lambda key, ctx: (key, ctx), bool),
        Impl(
            "graylane evaluate",
            client.evaluate,
            lambda key, ctx: (key, ctx),
            lambda result: result.value is True,  # type: ignore[attr-defined]
        ),
    ]
    return impls, client


def openfeature_impls(client: Client) -> list[Impl]:
    from openfeature import api  # noqa: PLC0415 - optional extra
    from openfeature.evaluation_context import EvaluationContext  # noqa: PLC0415
    from openfeature.provider.no_op_provider import NoOpProvider  # noqa: PLC0415

    from graylane.openfeature import GraylaneProvider  # noqa: PLC0415

    api.set_provider(GraylaneProvider(client), domain="graylane")
    api.set_provider(NoOpProvider(), domain="no-op")
    graylane = api.get_client("graylane")
    no_op = api.get_client("no-op")

    def of_args(key: str, ctx: Context) -> tuple[Any, ...]:
        attributes = {k: v for k, v in ctx.items() if k != "targetingKey"}
        return (key, False, EvaluationContext(str(ctx["targetingKey"]), attributes))

    return [
        Impl("openfeature + graylane", graylane.get_boolean_value, of_args, bool),
        Impl("ref: openfeature no-op", no_op.get_boolean_value, of_args, None, reference=True),
    ]


class PeerHandles:
    """What must be shut down after the peers ran."""

    def __init__(self) -> None:
        self.closers: list[Callable[[], object]] = []

    def close(self) -> None:
        for close in self.closers:
            try:
                close()
            except Exception as exc:  # noqa: BLE001 - a peer failing to stop is not ours
                print(f"  (shutting a peer down failed: {exc})")


def peer_impls(handles: PeerHandles, tmp: Path) -> list[Impl]:
    import logging  # noqa: PLC0415

    from flagsmith import Flagsmith  # noqa: PLC0415 - peers live in their own venv
    from flagsmith.offline_handlers import LocalFileHandler  # noqa: PLC0415
    from growthbook import GrowthBook  # noqa: PLC0415
    from UnleashClient import UnleashClient  # noqa: PLC0415
    from UnleashClient.cache import BaseCache  # noqa: PLC0415
    from UnleashClient.constants import FEATURES_URL  # noqa: PLC0415
    from UnleashClient.utils import InstanceAllowType  # noqa: PLC0415

    logging.getLogger("UnleashClient").setLevel(logging.ERROR)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)

    class MemoryCache(BaseCache):  # type: ignore[misc]
        """Unleash's bootstrap cache without the file fcache would write."""

        def __init__(self, features: dict[str, Any]) -> None:
            self._data: dict[str, Any] = {FEATURES_URL: json.dumps(features)}
            self.bootstrapped = True

        def set(self, key: str, value: Any) -> None:
            self._data[key] = value

        def mset(self, data: dict[str, Any]) -> None:
            self._data.update(data)

        def get(self, key: str, default: Any = None) -> Any:
            return self._data.get(key, default)

        def exists(self, key: str) -> bool:
            return key in self._data

        def destroy(self) -> None:
            self._data.clear()

    unleash = UnleashClient(
        "http://127.0.0.1:9/api",  # never contacted: no registration, metrics or fetching
        "graylane-bench",
        refresh_interval=3600,
        disable_metrics=True,
        disable_registration=True,
        cache=MemoryCache(unleash_features()),
        multiple_instance_mode=InstanceAllowType.SILENTLY_ALLOW,
    )
    unleash.initialize_client(fetch_toggles=False)
    handles.closers.append(unleash.destroy)

    growthbook = GrowthBook(features=growthbook_features())
    handles.closers.append(growthbook.destroy)

    def growthbook_is_on(key: str, attributes: dict[str, Any]) -> bool:
        growthbook.set_attributes(attributes)
        return growthbook.is_on(key)

    environment_file = tmp / "flagsmith-environment.json"
    environment_file.write_text(json.dumps(flagsmith_environment()))
    flagsmith = Flagsmith(
        offline_mode=True, offline_handler=LocalFileHandler(str(environment_file))
    )

    def flagsmith_is_enabled(key: str, identifier: str, traits: dict[str, Any]) -> bool:
        return flagsmith.get_identity_flags(identifier, traits).is_feature_enabled(key)

    def traits(ctx: Context) -> dict[str, Any]:
        return {k: v for k, v in ctx.items() if k != "targetingKey"}

    return [
        Impl(
            "unleash is_enabled",
            unleash.is_enabled,
            lambda key, ctx: (key, {"userId": ctx["targetingKey"], **traits(ctx)}),
            bool,
            peer=True,
        ),
        Impl(
            "growthbook is_on",
            growthbook_is_on,
            lambda key, ctx: (key, {"id": ctx["targetingKey"], **traits(ctx)}),
            bool,
            peer=True,
        ),
        Impl(
            "flagsmith is_enabled",
            flagsmith_is_enabled,
            lambda key, ctx: (key, ctx["targetingKey"], traits(ctx)),
            bool,
            peer=True,
        ),
    ]


# --- the peers' virtualenv -------------------------------------------------------------


def ensure_peers_venv(path: Path, rebuild: bool) -> Path:
    """The peers' Python, creating or refreshing their venv when needed."""
    python = path / "bin" / "python"
    wanted = {
        "python": sys.version,
        "repo": str(REPO),
        "pyproject": hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest(),
        "packages": [f"-e {REPO}[openfeature]", *PEER_PACKAGES],
    }
    marker = path / MARKER
    if not rebuild and python.exists() and marker.exists():
        try:
            if json.loads(marker.read_text()) == wanted:
                return python
        except ValueError:
            pass
    if path.exists():
        if not (path / "pyvenv.cfg").exists():
            raise SystemExit(f"{path} exists and is not a virtualenv; move it or pass --peers-venv")
        shutil.rmtree(path)
    print(f"setting up the peers' virtualenv in {path} (once; about a minute) ...", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    steps = [
        [sys.executable, "-m", "venv", str(path)],
        [*pip, "-e", f"{REPO}[openfeature]", *PEER_PACKAGES],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            print(done.stdout[-3000:] + done.stderr[-3000:])
            raise SystemExit(
                f"could not set up the peers' virtualenv ({' '.join(step[:4])} ... failed); "
                "run with --no-peers to measure Graylane alone"
            )
    marker.write_text(json.dumps(wanted))
    return python


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "-"


# --- memory and compile time of a large config ----------------------------------------


def status_kib(field: str) -> int:
    """A `VmRSS`-style line of /proc/self/status, in KiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def rss_child(kind: str, document_path: str) -> int:
    """Run in a fresh process: print this process's resident memory as JSON, holding a
    client loaded from `document_path` (`loaded`) or only the same imports (`baseline`)."""
    holder: list[Client] = []
    if kind == "loaded":
        data = Path(document_path).read_bytes()
        holder.append(Client.from_document(json.loads(data), ENV))
        del data
    gc.collect()
    print(json.dumps({"rss_kib": status_kib("VmRSS"), "hwm_kib": status_kib("VmHWM")}))
    return 0


def measure_memory(document_path: Path) -> dict[str, int]:
    results = {}
    for kind in ("baseline", "loaded"):
        out = subprocess.run(  # noqa: S603
            [sys.executable, __file__, "--rss-child", kind, "--document", str(document_path)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        data = json.loads(out.strip().splitlines()[-1])
        results[kind] = data["rss_kib"]
        results[kind + "_hwm"] = data["hwm_kib"]
    return results


def large_config_report(count: int, repeats: int, tmp: Path) -> None:
    document = large_document(count)
    path = tmp / "large-document.json"
    data = json.dumps(document, separators=(",", ":")).encode()
    path.write_bytes(data)
    raw = json.loads(data)
    parsed = parse_document(raw)
    timings = {
        "json.loads": best_seconds(lambda: json.loads(data), repeats),
        "parse_document (validate)": best_seconds(lambda: parse_document(raw), repeats),
        "compile_document": best_seconds(lambda: compile_document(parsed, ENV), repeats),
        "Client.from_document (both)": best_seconds(
            lambda: Client.from_document(raw, ENV), repeats
        ),
    }
    memory = measure_memory(path)
    client = Client.from_document(raw, ENV)
    rng = random.Random(3)
    keys = list(document["flags"])
    extra = {"email": "ana@example.com", "app_version": "3.1.0", "age": 30}
    calls = [(rng.choice(keys), {**ctx, **extra}) for ctx in make_contexts(10_000, seed=5)]
    evaluate_ns = best_per_call(
        [("x", lambda: run_args(client.variant, calls), len(calls))], 1, max(repeats, 3)
    )["x"]

    rules = sum(bool(f["environments"][ENV].get("rules")) for f in document["flags"].values())
    print()
    print(
        f"A config of {count:,} flags ({rules:,} with targeting rules, "
        f"{len(document['segments'])} segments), {len(data) / 1e6:.1f} MB of JSON:"
    )
    for name, seconds in timings.items():
        print(f"  {name:<30} {seconds * 1000:8.1f} ms  (best of {repeats})")
    added = memory["loaded"] - memory["baseline"]
    print(
        f"  resident memory: {memory['loaded'] / 1024:.1f} MiB holding the client, "
        f"{memory['baseline'] / 1024:.1f} MiB baseline (same imports): "
        f"+{added / 1024:.1f} MiB, {added * 1024 / count:,.0f} bytes per flag "
        f"(peak while loading: {memory['loaded_hwm'] / 1024:.1f} MiB)"
    )
    print(f"  variant() of a random one of the {count:,} flags: {evaluate_ns:,.0f} ns/call")


# --- the run ---------------------------------------------------------------------------


def on_shares(impls: Sequence[Impl], contexts: Sequence[Context]) -> dict[tuple[str, str], float]:
    """What each implementation served over the contexts (a check that they agree)."""
    shares = {}
    for impl in impls:
        if impl.on is None:
            continue
        for _, key, _ in CASES:
            served = [impl.on(impl.fn(*impl.args(key, ctx))) for ctx in contexts]
            shares[(impl.name, key)] = sum(served) / len(served)
    return shares


def run(args: argparse.Namespace, with_peers: bool) -> int:
    repeats = args.repeats or (2 if args.quick else 5)
    count = args.contexts or (2_000 if args.quick else 10_000)
    chunk = args.chunk
    contexts = make_contexts(count)

    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at the start"
    )
    names = ["graylane", "mmh3", "openfeature-sdk", "UnleashClient", "yggdrasil-engine"]
    names += ["growthbook", "flagsmith", "flagsmith-flag-engine"]
    print("versions: " + ", ".join(f"{n} {package_version(n)}" for n in names))
    print(
        f"{count:,} contexts in chunks of {chunk}, rows interleaved chunk by chunk, "
        f"best of {repeats} rounds per chunk, GC off"
    )

    handles = PeerHandles()
    with tempfile.TemporaryDirectory(prefix="graylane-bench-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            impls, client = graylane_impls()
            try:
                impls += openfeature_impls(client)
            except ImportError:
                print("(openfeature-sdk is not installed: no OpenFeature rows)")
            if with_peers:
                impls += peer_impls(handles, tmp)
            shares = on_shares(impls, contexts)
            rows = [
                (f"{letter} {impl.name}", impl.fn, [impl.args(key, ctx) for ctx in contexts])
                for letter, key, _ in CASES
                for impl in impls
            ]
            best = best_per_call_chunked(rows, chunk, repeats)
        finally:
            handles.close()
        report(impls, best, shares, with_peers)
        large_config_report(MEMORY_FLAGS, 1 if args.quick else 3, tmp)
    return 0


def report(
    impls: Sequence[Impl],
    best: dict[str, float],
    shares: dict[tuple[str, str], float],
    with_peers: bool,
) -> None:
    expected = expected_on_share()
    print()
    print(f"{'case':<22} {'implementation':<24} {'ns/call':>9} {'x floor':>8} {'served on':>10}")
    met_floor = True
    met_peers = True
    speedups = []
    for letter, key, what in CASES:
        floor = best[f"{letter} {FLOOR}"]
        label = f"{letter} {what}"
        for impl in impls:
            ns = best[f"{letter} {impl.name}"]
            share = shares.get((impl.name, key))
            served = "" if share is None else f"{share:.1%}"
            print(f"{label:<22} {impl.name:<24} {ns:9,.0f} {ns / floor:8.2f} {served:>10}")
            label = ""
        print(f"{'':<22} {'(expected share)':<24} {'':>9} {'':>8} {expected[key]:>10.1%}")
        graylane = best[f"{letter} {GRAYLANE}"]
        met_floor &= graylane / floor <= GOAL_FLOOR_RATIO
        peers = [(best[f"{letter} {i.name}"], i.name) for i in impls if i.peer]
        if peers:
            fastest_ns, fastest = min(peers)
            speedup = fastest_ns / graylane
            met_peers &= speedup >= GOAL_PEER_SPEEDUP
            speedups.append((letter, speedup, fastest))
    print()
    for letter, speedup, fastest in speedups:
        print(
            f"case {letter}: {GRAYLANE} is {speedup:.1f}x faster than the fastest peer ({fastest})"
        )
    ratios = ", ".join(
        f"{letter} {best[f'{letter} {GRAYLANE}'] / best[f'{letter} {FLOOR}']:.2f}x"
        for letter, _, _ in CASES
    )
    print(
        f"goal: {GRAYLANE} within {GOAL_FLOOR_RATIO:g}x of the floor on every case: "
        f"{'met' if met_floor else 'NOT met'} ({ratios})"
    )
    if with_peers and speedups:
        worst = min(s for _, s, _ in speedups)
        print(
            f"goal: at least {GOAL_PEER_SPEEDUP:g}x faster than the fastest peer on every case: "
            f"{'met' if met_peers else 'NOT met'} (smallest: {worst:.1f}x)"
        )
        print()
        print(PEER_SETUP)
    elif not with_peers:
        print("goal: 10x faster than the peers: not measured (--no-peers)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short, rougher run")
    parser.add_argument("--no-peers", action="store_true", help="Graylane and the floor only")
    parser.add_argument("--contexts", type=int, help="distinct contexts (default 10,000)")
    parser.add_argument("--repeats", type=int, help="rounds per chunk (default 5, quick 2)")
    parser.add_argument("--chunk", type=int, default=500, help="calls timed at a time")
    parser.add_argument("--peers-venv", type=Path, default=PEERS_VENV, help="peers' virtualenv")
    parser.add_argument("--rebuild-peers", action="store_true", help="reinstall the peers")
    parser.add_argument("--in-peers-venv", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rss-child", choices=["baseline", "loaded"], help=argparse.SUPPRESS)
    parser.add_argument("--document", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.rss_child:
        return rss_child(args.rss_child, args.document)
    if args.no_peers:
        return run(args, with_peers=False)
    if not args.in_peers_venv:
        python = ensure_peers_venv(args.peers_venv, args.rebuild_peers)
        forwarded = list(sys.argv[1:] if argv is None else argv)
        forwarded = [a for a in forwarded if a != "--rebuild-peers"]
        command = [str(python), __file__, "--in-peers-venv", *forwarded]
        return subprocess.run(command, check=False).returncode  # noqa: S603
    return run(args, with_peers=True)


if __name__ == "__main__":
    sys.exit(main())
