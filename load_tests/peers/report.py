"""The report: the results table, the ratios table and the goal line printed after the
rounds, and the section of docs/benchmarks.md between the `peers` markers that a full
run writes (what was run, how both servers were set up, what each number means).
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Sequence

from harness import REPO
from rounds import Row
from targets import CONTEXTS, ENDPOINTS
from unleash_server import NODE_VERSION, UNLEASH_VERSION, node_package

DOCS = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- peers:begin -->", "<!-- peers:end -->"
GOAL_SPEEDUP = 3.0


def fmt_ms(value: float) -> str:
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def tables(rows: dict[tuple[str, str], Row]) -> tuple[str, str, str]:
    """The results table, the ratios table, and the goal line (markdown)."""
    lines = [
        "| endpoint | server | route | req/s | each run | p50 | p99 | failures "
        "| server CPU / req | server busy | RSS after | locust CPU | returns |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for endpoint in ENDPOINTS:
        for server in ("Graylane", "Unleash"):
            row = rows[server, endpoint]
            t = row.target
            bold = "**" if server == "Graylane" else ""
            lines.append(
                f"| {endpoint} | {server} | `{t.method} {t.path}` | {bold}{row.rps:,.0f}{bold} "
                f"| {row.by_run} | {fmt_ms(row.percentile(50))} | {fmt_ms(row.percentile(99))} "
                f"| {row.failures} | {row.cpu_ms_per_request:.3f} ms | {100 * row.busy:.0f}% "
                f"| {row.rss_mib:.0f} MiB | {100 * row.locust_cpu_share:.0f}% | {row.body} |"
            )
    ratios = [
        "| endpoint | Graylane ÷ Unleash req/s | p99 Graylane | p99 Unleash "
        "| server CPU / req, Graylane ÷ Unleash |",
        "|---|---:|---:|---:|---:|",
    ]
    for endpoint in ENDPOINTS:
        g, u = rows["Graylane", endpoint], rows["Unleash", endpoint]
        ratios.append(
            f"| {endpoint} | **{ratio(g.rps, u.rps)}** | {fmt_ms(g.percentile(99))} "
            f"| {fmt_ms(u.percentile(99))} | {ratio(g.cpu_ms_per_request, u.cpu_ms_per_request)} |"
        )
    g, u = rows["Graylane", "config"], rows["Unleash", "config"]
    speedup = g.rps / u.rps if u.rps else math.nan
    p99_ok = g.percentile(99) <= u.percentile(99)
    met = speedup >= GOAL_SPEEDUP and p99_ok
    goal = (
        f"Goal: at least {GOAL_SPEEDUP:g}x Unleash's req/s on the config endpoint (full body) "
        f"at equal or lower p99 — **{'met' if met else 'not met'}**: {speedup:.2f}x the "
        f"requests per second, p99 {fmt_ms(g.percentile(99))} against "
        f"{fmt_ms(u.percentile(99))} ({'lower or equal' if p99_ok else 'higher'})."
    )
    return "\n".join(lines), "\n".join(ratios), goal


def first_failures(rows: dict[tuple[str, str], Row]) -> list[str]:
    return [
        f"{server} {endpoint}: {run.first_failure}"
        for (server, endpoint), row in rows.items()
        for run in row.runs[:1]
        if run.first_failure
    ]


def docs_section(
    rows: dict[tuple[str, str], Row], meta: dict[str, str], notes: Sequence[str]
) -> str:
    results, ratios, goal = tables(rows)
    failures = first_failures(rows)
    failure_text = (
        "No request failed."
        if not failures
        else "First failures: " + "; ".join(f"`{f}`" for f in failures) + "."
    )
    checks = "\n".join(f"    {note}" for note in notes)
    skipped = (
        ""
        if meta.get("complete", "yes") == "yes"
        else " The time budget ran out before the last rounds: some runs were skipped."
    )
    return f"""\
`{meta["command"]}`: {meta["rounds"]} rounds x {meta["run_time"]} s per endpoint and server,
{meta["users"]} locust users, the first {meta["warmup"]} s of each run left out;
the whole run took {meta["wall"]}.
Load average {meta["load"]} at the start, {meta["load_end"]} at the end (the machine is shared).
Versions: unleash-server {UNLEASH_VERSION} on Node {meta["node"]}, Graylane {meta["graylane"]}
on Python {platform.python_version()}, locust {meta["locust"]}.

The script installs `unleash-server` and a Node.js it supports (npm package
`{node_package()}`; Unleash 8 needs Node 22 or newer) with npm, once, into
`~/.cache/graylane-bench/unleash-{UNLEASH_VERSION}-node-{NODE_VERSION}`, outside the repository.
It starts both servers on 127.0.0.1, each on a fresh database of its own on the same
PostgreSQL, dropped at the end:

- **Unleash**: one Node process (no cluster), `start()` from `unleash-server` with the
  defaults except: log level `error`, no version check or telemetry, no admin user, an
  admin, a backend and a frontend token given through `authentication.initApiTokens`, and
  the SDK APIs' per-address rate limit (20,000 a minute by default; all the load comes from
  one address) raised out of the way. Its client-features cache is on, as by default.
- **Graylane**: `graylane-server serve`, one process with one uvicorn worker, PostgreSQL
  and Redis (`redis://127.0.0.1:6379/0`), log level warning, as `bench/servers.py` starts
  it for the other benchmarks.

Both hold the same 50 boolean flags, enabled in `production`: 15 on for everyone, 5
switched off, 18 percentage rollouts (1-90%, sticky on the user id: Unleash
`flexibleRollout` with `stickiness: userId`, Graylane a fallthrough rollout on
`targetingKey`), and 12 targeted: `country IN [...]` (and in half `plan IN [pro,
enterprise]`) serves on, everyone else off or 20%. Before measuring, the script checks that
both serve 50 flags, that both answer 304 to their own ETag, and that both give the same,
expected answer for every flag whose answer does not depend on a rollout hash, for 40
contexts.

Each run is `locust --headless` with FastHttpUser, {meta["users"]} users calling back to
back (no wait, one keep-alive connection each), against one endpoint of one server; the
runs alternate between the servers and which one goes first. Requests carry
`Accept-Encoding: gzip`, as SDKs send it: Unleash compresses every answer over 1 KB,
Graylane its config (prepared once per config version) but not OFREP answers. The three
endpoints:

- **config**: Unleash `GET /api/client/features` with the backend token (and the headers
  its SDKs send: `UNLEASH-APPNAME`, `UNLEASH-INSTANCEID`, `Unleash-Client-Spec`) against
  Graylane `GET /api/v1/sdk/config` with an SDK token; the whole configuration, 200.
- **config 304**: the same with `If-None-Match` set to the ETag each server gave. Unleash
  {UNLEASH_VERSION} supports it on this endpoint: a strong ETag from the query and its
  revision id, and 304 when it matches.
- **evaluate**: Unleash's frontend API `POST /api/frontend` (the OSS server's evaluation
  endpoint: `{{"context": {{"userId", "properties": {{"country", "plan"}}}}}}`, frontend token)
  against Graylane's OFREP bulk evaluation `POST /ofrep/v1/evaluate/flags` (`{{"context":
  {{"targetingKey", "country", "plan"}}}}`, SDK token), cycling through the same {CONTEXTS:,}
  contexts. Unleash's answer lists only the flags that are on for the context; OFREP
  lists all 50 with value, variant and reason.

Server CPU per request is the server process's user + system time (`/proc/<pid>/stat`)
over each whole locust run, divided by the requests of the run; RSS is `VmRSS` after the
runs (the largest); server busy is CPU per request times requests per second, the
server's share of one core at that rate; locust CPU is the load generator's share of one
core. Servers, load generator and PostgreSQL share the machine's {os.cpu_count()} CPUs with
whatever else runs on it: where a server is well under 100% busy, its rate was set by
the rest of the machine (the load generator, other processes), not by the server, and the
CPU per request is the steadier comparison.

{results}

{ratios}

{goal}

{failure_text}{skipped}

The checks before measuring, as printed by the run:

{checks}
"""


def write_docs(section: str) -> None:
    document = DOCS.read_text()
    start, end = document.index(BEGIN) + len(BEGIN), document.index(END)
    DOCS.write_text(document[:start] + "\n" + section + document[end:])
