"""The checks before measuring: that both servers serve the 50 flags, that both answer
304 to their own ETag, and that both give the same, expected answer for every flag whose
answer does not depend on a rollout hash.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import httpx
from shared_flags import FLAGS, Context
from targets import Target


def answers(target: Target, context: Context) -> dict[str, bool]:
    """Every flag's boolean answer for one context, from the server's evaluation endpoint."""
    body = context.unleash() if target.server == "Unleash" else context.ofrep()
    response = httpx.request(
        target.method, target.url + target.path, json=body, headers=target.headers, timeout=10
    )
    response.raise_for_status()
    data = response.json()
    if target.server == "Unleash":
        # The frontend API lists only the flags that are on for the context.
        on = {t["name"] for t in data["toggles"] if t["enabled"]}
        return {f.key: f.key in on for f in FLAGS}
    return {f["key"]: f["value"] is True for f in data["flags"]}


def disagreements(target: Target, contexts: Sequence[Context]) -> list[str]:
    problems = []
    for context in contexts:
        got = answers(target, context)
        for flag in FLAGS:
            want = flag.expected(context.country, context.plan)
            if flag.key not in got:
                problems.append(f"{flag.key} missing for {context}")
            elif want is not None and got[flag.key] != want:
                problems.append(f"{flag.key} is {got[flag.key]} for {context}, expected {want}")
    return problems


def verify(targets: dict[tuple[str, str], Target], contexts: Sequence[Context]) -> list[str]:
    """Checks both servers; returns notes on what was seen. Raises when they are wrong."""
    notes = []
    for server in ("Graylane", "Unleash"):
        config = targets[server, "config"]
        response = httpx.get(config.url + config.path, headers=config.headers, timeout=10)
        response.raise_for_status()
        data = response.json()
        count = len(data["features"] if server == "Unleash" else data["flags"])
        if count != len(FLAGS):
            raise RuntimeError(f"{server} serves {count} flags on {config.path}, not {len(FLAGS)}")
        etag = response.headers.get("etag")
        if not etag:
            raise RuntimeError(f"{server} sent no ETag on {config.path}")
        again = httpx.get(
            config.url + config.path, headers={**config.headers, "If-None-Match": etag}, timeout=10
        )  # fmt: skip
        if again.status_code != 304:
            raise RuntimeError(f"{server} answered {again.status_code} to its own ETag")
        targets[server, "config 304"].headers["If-None-Match"] = etag
        notes.append(f"{server} {config.path}: {count} flags, ETag {etag} -> 304")
    # Unleash's frontend API evaluates from a cache that follows changes a moment later.
    deadline = time.monotonic() + 60
    while True:
        problems = disagreements(targets["Unleash", "evaluate"], contexts[:1])
        if not problems or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for server in ("Graylane", "Unleash"):
        problems = disagreements(targets[server, "evaluate"], contexts)
        if problems:
            raise RuntimeError(f"{server} answers wrongly:\n  " + "\n  ".join(problems[:10]))
        shares = []
        for context in contexts:
            got = answers(targets[server, "evaluate"], context)
            shares += [
                got[f.key] for f in FLAGS if f.expected(context.country, context.plan) is None
            ]
        notes.append(
            f"{server} evaluation: every fixed answer right for {len(contexts)} contexts; "
            f"rollout-decided answers on {100 * sum(shares) / len(shares):.0f}%"
        )
    wanted = [
        sum(f.percentage for f in FLAGS if f.expected(c.country, c.plan) is None)
        / max(1, sum(1 for f in FLAGS if f.expected(c.country, c.plan) is None))
        for c in contexts
    ]
    notes.append(f"(expected about {sum(wanted) / len(wanted):.0f}% by the rollout percentages)")
    return notes
