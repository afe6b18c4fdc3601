"""Graylane next to the Unleash open-source server, under the same HTTP load, in one run.

    python load_tests/peers/unleash.py            # 2 rounds x 20 s per endpoint and server; ~6 min
    python load_tests/peers/unleash.py --quick    # 1 round x 8 s; does not touch the docs

What it does, every run:

1. Installs `unleash-server` (pinned: UNLEASH_VERSION) and a Node.js it supports (pinned:
   NODE_VERSION, from the npm package `node-<os>-<arch>`; Unleash 8 needs Node 22 or newer)
   with npm, once, into ~/.cache/graylane-bench/unleash-<version>-node-<version>, outside
   the repository, and reuses it afterwards (`--rebuild-unleash` reinstalls).
2. Starts Unleash (one Node process, no cluster) with a small start file in that folder,
   on a free port of 127.0.0.1, against a fresh PostgreSQL database of its own, with an
   admin, a backend (client) and a frontend API token given at start; and
   `graylane-server serve` (one process, one uvicorn worker) on another fresh database and
   Redis, as bench/servers.py does for the benchmarks.
3. Loads the same 50 flags into both (FLAGS below), enabled in `production`, and checks
   that both serve 50 flags, that both answer 304 to their own ETag, and that both give
   the same answer for every flag whose answer does not depend on a rollout hash.
4. Runs locust (headless, FastHttpUser, a fixed number of users, no wait) against each
   endpoint of each server in turn, alternating which server goes first, and prints a
   table: requests per second and p50/p99 after a warm-up, failures, the server's CPU per
   request (user + system from /proc/<pid>/stat, over the whole locust run) and its
   resident memory.

       config      Unleash GET /api/client/features   vs  Graylane GET /api/v1/sdk/config
       config 304  the same with If-None-Match: <the ETag each server gave>
       evaluate    Unleash POST /api/frontend          vs  Graylane POST /ofrep/v1/evaluate/flags
                   with the same contexts (user id, country, plan) in each product's shape

5. A full run (not `--quick`) writes the results between the `peers` markers of
   docs/benchmarks.md. Both servers are stopped and both databases dropped at the end,
   also after an error or Ctrl-C.


The pieces, in this folder:

    unleash_server.py   installing Unleash and Node with npm, the start file, its tokens
    shared_flags.py     the 50 flags and the contexts, in each product's model
    targets.py          the endpoints compared, as locust calls them
    agreement.py        the checks that both servers answer alike, before measuring
    rounds.py           the locust runs and what is measured of each
    report.py           the tables and the section of docs/benchmarks.md
    locustfile.py       the locust user of every run
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import httpx
from sqlalchemy import create_engine, make_url, text

REPO = Path(__file__).resolve().parents[2]
# This folder's modules use `harness` (load_tests/) and `bench.servers` (the repository).
sys.path[1:1] = [str(REPO / "load_tests"), str(REPO)]

from agreement import verify  # noqa: E402
from bench.servers import Server, fresh_database  # noqa: E402
from harness import DEFAULT_POSTGRES, DEFAULT_REDIS, deployment  # noqa: E402
from report import BEGIN, DOCS, END, docs_section, first_failures, tables, write_docs  # noqa: E402
from rounds import Row, measure  # noqa: E402
from shared_flags import FLAGS, load_graylane, load_unleash, make_contexts  # noqa: E402
from targets import make_targets  # noqa: E402
from unleash_server import (  # noqa: E402
    INSTALL_DIR,
    UNLEASH_VERSION,
    UnleashServer,
    ensure_unleash,
    node_version,
    unleash_settings,
    unleash_tokens,
)


@contextlib.contextmanager
def stopping(server: Server | UnleashServer) -> Iterator[None]:
    try:
        yield
    finally:
        server.stop()


def leftover_databases(admin_url: str, names: Sequence[str]) -> list[str]:
    url = make_url(admin_url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT datname FROM pg_database")).scalars().all()
    finally:
        engine.dispose()
    return [name for name in names if name in rows]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 8 s runs; no docs")
    parser.add_argument("--users", type=int, default=16, help="locust users (default 16)")
    parser.add_argument("--run-time", type=int, help="seconds per locust run (default 20)")
    parser.add_argument("--warmup", type=float, help="seconds left out of each run (default 4)")
    parser.add_argument("--rounds", type=int, help="rounds over every endpoint (default 2)")
    parser.add_argument("--budget", type=float, default=540.0, help="seconds for the whole run")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="PostgreSQL admin URL")
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="Redis URL for Graylane")
    parser.add_argument("--unleash-dir", type=Path, help="where Unleash is installed")
    parser.add_argument("--rebuild-unleash", action="store_true", help="reinstall Unleash")
    docs = parser.add_mutually_exclusive_group()
    docs.add_argument("--write-docs", action="store_true", help="update docs even with --quick")
    docs.add_argument("--no-docs", action="store_true", help="leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    args.run_time = args.run_time or (8 if args.quick else 20)
    args.warmup = args.warmup if args.warmup is not None else (2.0 if args.quick else 4.0)
    args.rounds = args.rounds or (1 if args.quick else 2)
    if args.warmup >= args.run_time:
        parser.error("--warmup must be shorter than --run-time")
    args.unleash_dir = args.unleash_dir or INSTALL_DIR
    return args


@dataclass
class Outcome:
    rows: dict[tuple[str, str], Row]
    notes: list[str]
    complete: bool
    databases: list[str]


def run_both(args: argparse.Namespace, node: Path, deadline: float) -> Outcome:
    """Both servers on fresh databases: load, check, measure; then stop them and drop both."""
    tokens = unleash_tokens()
    with (
        tempfile.TemporaryDirectory(prefix="graylane-peers-") as tmp_name,
        fresh_database(args.postgres) as unleash_db,
        deployment(Path(tmp_name), postgres=args.postgres, redis=args.redis) as deploy,
    ):
        tmp = Path(tmp_name)
        graylane_url = deploy.env["GRAYLANE_DATABASE_URL"]
        databases = [str(make_url(unleash_db).database), str(make_url(graylane_url).database)]
        settings = unleash_settings(unleash_db, tokens)
        unleash = UnleashServer(node, args.unleash_dir, settings, tmp / "unleash.log")
        graylane = Server(deploy.env, tmp / "graylane.log")
        try:
            with stopping(unleash), stopping(graylane):
                t0 = time.monotonic()
                unleash.start()
                graylane.start()
                print(f"both servers up in {time.monotonic() - t0:.1f} s", flush=True)
                headers = {"Authorization": tokens["admin"]}
                with httpx.Client(base_url=unleash.url, headers=headers, timeout=30) as admin:
                    load_unleash(admin, FLAGS)
                headers = {"Authorization": f"Bearer {deploy.admin_token}"}
                with httpx.Client(base_url=graylane.url, headers=headers, timeout=30) as admin:
                    sdk_key = load_graylane(admin, FLAGS)
                targets = make_targets(unleash, graylane, tokens, sdk_key)
                notes = verify(targets, make_contexts(40, seed=99))
                for note in notes:
                    print(f"  {note}", flush=True)
                rows, complete = measure(targets, args, tmp, deadline)
        except Exception:
            for log in sorted(tmp.glob("*.log")):
                print(f"--- {log.name} (tail) ---\n{log.read_text(errors='replace')[-3000:]}")
            raise
    return Outcome(rows, notes, complete, databases)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    node = ensure_unleash(args.unleash_dir, args.rebuild_unleash)
    meta = {
        "command": "python load_tests/peers/unleash.py" + (" --quick" if args.quick else ""),
        "load": load,
        "node": node_version(node),
        "graylane": version("graylane"),
        "locust": version("locust"),
        "users": str(args.users),
        "run_time": str(args.run_time),
        "warmup": f"{args.warmup:g}",
        "rounds": str(args.rounds),
    }
    print(
        f"unleash-server {UNLEASH_VERSION} on Node {meta['node']}; Graylane {meta['graylane']}; "
        f"locust {meta['locust']}; {os.cpu_count()} CPUs, load average {load}",
        flush=True,
    )
    outcome = run_both(args, node, started + args.budget)
    left = leftover_databases(args.postgres, outcome.databases)
    if left:
        print(f"warning: databases still there: {', '.join(left)}")
    meta["wall"] = f"{(time.monotonic() - started) / 60:.1f} minutes"
    meta["load_end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    results, ratios, goal = tables(outcome.rows)
    print(f"\n{results}\n\n{ratios}\n\n{goal}")
    for failure in first_failures(outcome.rows):
        print(f"first failure: {failure}")
    meta["complete"] = "yes" if outcome.complete else "no"
    if not outcome.complete:
        print(f"the time budget ({args.budget:g} s) ran out: some runs of the last rounds skipped")
    print(f"whole run: {meta['wall']}; load average at the end {meta['load_end']}")
    if args.write_docs or not (args.quick or args.no_docs):
        write_docs(docs_section(outcome.rows, meta, outcome.notes))
        print(f"written to {DOCS.relative_to(REPO)} between {BEGIN} and {END}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
