"""Screenshots of the admin UI's main pages, for the README.

Starts a server on a temporary SQLite data directory, fills it with demo data (flags,
segments, ramps with a few hours of history and SDK counts), signs in with Debian's
chromium driven by Playwright, and writes PNGs under docs/screenshots/.

    python scripts/screenshots.py [--out docs/screenshots] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import httpx
import uvicorn
from pydantic import SecretStr
from sqlalchemy import update

from graylane_server import db
from graylane_server.app import create_app
from graylane_server.models import AuditRow, FlagRow, RampRow, utcnow
from graylane_server.ramps import service as ramps
from graylane_server.ramps.observations import CLUSTERS
from graylane_server.runtime import Runtime
from graylane_server.settings import Settings
from graylane_server.tokens.principal import Principal, Role
from graylane_server.usage.filing import file_report
from graylane_server.usage.schemas import EvaluationCount, EventCount, MetricsReport, Window
from graylane_server.usage.store import BUCKET_SECONDS
from graylane_server.users import service as users

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN_TOKEN = "gla_screenshots-admin-token"  # noqa: S105 - a throwaway demo server's
PASSWORD = "release-it-gently"  # noqa: S105


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    def __init__(self, data_dir: Path) -> None:
        settings = Settings(
            data_dir=data_dir,
            bootstrap_admin_token=SecretStr(ADMIN_TOKEN),
            controller_interval=3600,  # the demo ramps stand still while we look
            log_level="warning",
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    def __enter__(self) -> Server:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)


# --- demo data ------------------------------------------------------------------------------


def boolean(description: str, tags: list[str], environments: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": description,
        "tags": tags,
        "variants": {"on": True, "off": False},
        "off_variant": "off",
        "environments": environments,
    }


def at(percentage: float, *, enabled: bool = True, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "enabled": enabled,
        "fallthrough": {
            "rollout": {"percentage": percentage, "variants": {"on": 100}},
            "otherwise": "off",
        },
    }
    config.update(extra)
    return config


def ramp_plan(stages: list[float], **extra: Any) -> dict[str, Any]:
    return {
        "stages": stages,
        "min_stage_duration": "30m",
        "min_samples": 2000,
        "guards": [  # the recommended pair
            {"kind": "relative", "metric": "error_rate", "max": 0.5},
            {"metric": "error_rate", "max": 0.2},
        ],
        "auto_advance": True,
        **extra,
    }


STAFF_RULE = {
    "name": "staff",
    "when": [{"attribute": "email", "op": "ends_with", "values": ["@acme.example"]}],
    "serve": {"variant": "on"},
}
BETA_RULE = {"name": "beta", "segment": "beta-testers", "serve": {"variant": "on"}}

FLAGS: dict[str, dict[str, Any]] = {
    "new-checkout": boolean(
        "One-page checkout with saved payment methods",
        ["checkout", "payments"],
        {
            "development": at(100),
            "staging": at(100, rules=[STAFF_RULE]),
            "production": at(0, rules=[STAFF_RULE, BETA_RULE], ramp=ramp_plan([1, 5, 25, 50, 100])),
        },
    ),
    "search-v2": boolean(
        "Typo-tolerant search backed by the new index",
        ["search"],
        {
            "staging": at(100),
            "production": at(0, ramp=ramp_plan([2, 10, 50, 100], auto_advance=False)),
        },
    ),
    "pricing-page-2026": {
        "description": "Pricing page experiment: annual plans first",
        "tags": ["growth", "experiment"],
        "variants": {"control": "monthly-first", "annual": "annual-first"},
        "off_variant": "control",
        "environments": {
            "staging": {
                "enabled": True,
                "fallthrough": {
                    "rollout": {"percentage": 100, "variants": {"control": 50, "annual": 50}},
                    "otherwise": "control",
                },
            },
            "production": {
                "enabled": True,
                "rules": [
                    {
                        "name": "enterprise stays on control",
                        "when": [{"attribute": "plan", "op": "in", "values": ["enterprise"]}],
                        "serve": {"variant": "control"},
                    },
                    {
                        "name": "beta sees annual",
                        "segment": "beta-testers",
                        "serve": {"variant": "annual"},
                    },
                ],
                "fallthrough": {
                    "rollout": {"percentage": 40, "variants": {"control": 50, "annual": 50}},
                    "otherwise": "control",
                },
            },
        },
    },
    "fast-payments": boolean(
        "Instant bank transfers in the payment step",
        ["payments"],
        {"staging": at(100), "production": at(0, ramp=ramp_plan([1, 10, 50, 100]))},
    ),
    "onboarding-tour": boolean(
        "Guided tour for first-time users",
        ["growth"],
        {"staging": at(100), "production": at(0, ramp=ramp_plan([5, 20, 100]))},
    ),
    "dark-mode": boolean(
        "Dark theme in the web app",
        ["ui"],
        {"development": at(100), "staging": at(100), "production": at(100)},
    ),
    "legacy-export": boolean(
        "CSV export through the old reporting service",
        ["reports", "cleanup"],
        {"staging": at(0, enabled=False), "production": at(0, enabled=False)},
    ),
    "api-rate-limit-v2": boolean(
        "Sliding-window rate limits on the public API",
        ["api", "platform"],
        {"staging": at(50), "production": at(0, ramp=ramp_plan([1, 5, 25, 100]))},
    ),
    "recommendations-ml": boolean(
        "Model-ranked product recommendations",
        ["ml", "growth"],
        {"staging": at(100), "production": at(15, rules=[BETA_RULE])},
    ),
}

SEGMENTS = {
    "beta-testers": {
        "description": "Customers who opted in to early features",
        "include": ["user-1042", "user-2291", "user-3310"],
        "exclude": ["user-0007"],
        "when": [{"attribute": "beta_opt_in", "op": "in", "values": [True]}],
    },
    "internal-staff": {
        "description": "Everyone with a company address",
        "when": [{"attribute": "email", "op": "ends_with", "values": ["@acme.example"]}],
    },
}


MAYA = Principal(kind="user", name="maya", role=Role.RELEASE_MANAGER)


def act(runtime: Runtime, flag: str, action: ramps.Action, reason: str | None = None) -> None:
    """What maya's clicks in the UI do: the ramp service, as `user:maya`."""
    with db.transaction(runtime.sessions) as session:
        loaded = ramps.load(session, flag, "production")
        ramps.act(
            session,
            principal=MAYA,
            key=flag,
            environment="production",
            action=action,
            expected_version=None if loaded.row is None else loaded.row.version,
            reason=reason,
            now=utcnow(),
        )


def seed(server: Server) -> None:
    runtime = server.runtime
    with db.transaction(runtime.sessions) as session:
        for name, role in (
            ("maya", Role.RELEASE_MANAGER),
            ("admin", Role.ADMIN),
            ("sam", Role.VIEWER),
            ("jon", Role.EDITOR),
        ):
            users.create(session, actor="cli", username=name, password=PASSWORD, role=role)

    tokens: dict[str, httpx.Client] = {}
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
    ) as root:
        for name, role in (("maya", "release_manager"), ("jon", "editor"), ("ci", "editor")):
            secret = root.post(
                "/api/v1/tokens", json={"kind": "admin", "role": role, "name": name}
            ).json()["token"]
            tokens[name] = httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {secret}"}, timeout=30
            )
        root.post(
            "/api/v1/tokens", json={"kind": "sdk", "environment": "production", "name": "web-app"}
        ).raise_for_status()
    ci, jon = tokens["ci"], tokens["jon"]

    for key, definition in SEGMENTS.items():
        jon.put(f"/api/v1/segments/{key}", json=definition).raise_for_status()
    for key, definition in FLAGS.items():
        ci.put(f"/api/v1/flags/{key}", json=definition).raise_for_status()

    act(runtime, "fast-payments", "start")
    act(runtime, "fast-payments", "advance")
    act(runtime, "fast-payments", "advance")
    act(runtime, "fast-payments", "advance", "bank partner confirmed capacity")
    act(runtime, "onboarding-tour", "start")
    act(runtime, "onboarding-tour", "advance")
    act(runtime, "onboarding-tour", "rollback", "tour covers the checkout button on mobile")
    act(runtime, "search-v2", "start", "index warm in all regions")
    act(runtime, "search-v2", "advance")
    act(runtime, "search-v2", "pause", "p99 latency up 40ms, checking with the search team")
    act(runtime, "new-checkout", "start", "first production exposure")
    act(runtime, "new-checkout", "advance", "error rate flat at 1%")
    act(runtime, "new-checkout", "advance", "holding well at 5%")
    tokens["maya"].put(
        "/api/v1/flags/legacy-export/environments/production/enabled",
        json={"enabled": False},
        headers={"X-Graylane-Reason": "replaced by the new export"},
    ).raise_for_status()
    for token in tokens.values():
        token.close()

    backdate(runtime)
    sdk_counts(runtime)


RAMP_TIMELINE = {  # minutes ago of each ramp transition, in the order they were made
    "fast-payments": (1560, 1200, 900, 600),
    "onboarding-tour": (420, 330, 290),
    "search-v2": (200, 110, 40),
    "new-checkout": (150, 85, 18),
}
MOVES = ("ramp.start", "ramp.advance", "ramp.complete", "ramp.restart", "ramp.rollback")
AGES = {"dark-mode": 75, "legacy-export": 120}
"""Flags nobody has touched for this many days (the list shows them as stale)."""


def backdate(runtime: Runtime) -> None:
    """Give the demo a past: set up three days ago, ramps moving over the last hours, a
    few flags untouched for months."""
    now = datetime.now(UTC)

    def ago(minutes: float) -> datetime:
        return now - timedelta(minutes=minutes)

    with db.transaction(runtime.sessions) as session:
        session.query(AuditRow).update({AuditRow.at: ago(3 * 1440)}, synchronize_session=False)
        session.query(FlagRow).update(
            {FlagRow.updated_at: ago(3 * 1440), FlagRow.created_at: ago(40 * 1440)},
            synchronize_session=False,
        )
        for flag, minutes in RAMP_TIMELINE.items():
            rows = (
                session.query(AuditRow)
                .filter(AuditRow.target_key == flag, AuditRow.action.like("ramp.%"))
                .order_by(AuditRow.id)
                .all()
            )
            for row, moment in zip(rows, minutes, strict=True):
                row.at = ago(moment)
            moved = [m for row, m in zip(rows, minutes, strict=True) if row.action in MOVES]
            session.execute(
                update(RampRow)
                .where(RampRow.flag == flag)
                .values(
                    started_at=ago(minutes[0]),
                    stage_started_at=ago(moved[-1]),
                    updated_at=ago(minutes[-1]),
                )
            )
            session.execute(
                update(FlagRow).where(FlagRow.key == flag).values(updated_at=ago(moved[-1]))
            )
        for flag, days in AGES.items():
            session.execute(
                update(FlagRow).where(FlagRow.key == flag).values(updated_at=ago(days * 1440))
            )
            session.query(AuditRow).filter(AuditRow.target_key == flag).update(
                {AuditRow.at: ago(days * 1440)}, synchronize_session=False
            )


def sdk_counts(runtime: Runtime) -> None:
    """Reports as SDKs would have sent them for new-checkout over the last 150 minutes, one
    per 10-second window: evaluations, and requests and errors per group, each under the
    rollout percentage the SDK served and split by unit cluster, filed as the metrics
    endpoint files them. The change fails a little more often than the rest."""
    rng = random.Random(7)
    now = time.time()
    start = now - 150 * 60
    stages = [(start, 1), (now - 85 * 60, 5), (now - 18 * 60, 25)]

    async def report_every_window() -> None:
        t = start
        while t + BUCKET_SECONDS <= now:
            percentage = [p for at_, p in stages if at_ <= t][-1]
            total = rng.randint(900, 1100)
            exposed = max(1, round(total * percentage / 100))
            report = MetricsReport(
                window=Window(start=t, end=t + BUCKET_SECONDS),
                evaluations=[
                    EvaluationCount(flag="new-checkout", variant="on", count=exposed),
                    EvaluationCount(flag="new-checkout", variant="off", count=total - exposed),
                ],
                events=[
                    *_group_events(
                        rng, "exposed", "on", requests=exposed, rate=0.0042, percentage=percentage
                    ),
                    *_group_events(
                        rng,
                        "unexposed",
                        "off",
                        requests=total - exposed,
                        rate=0.0038,
                        percentage=percentage,
                    ),
                ],
            )
            filing = file_report(report, now)
            await runtime.usage.record(
                "production", filing.at, filing.counts, filing.vectors, filing.until
            )
            t += BUCKET_SECONDS

    asyncio.run(report_every_window())


def _group_events(
    rng: random.Random,
    group: Literal["exposed", "unexposed"],
    variant: str,
    *,
    requests: int,
    rate: float,
    percentage: int,
) -> list[EventCount]:
    """One group's requests and errors, each request from a unit in a random cluster."""
    counted = {"request": [0] * CLUSTERS, "error": [0] * CLUSTERS}
    for _ in range(requests):
        cluster = rng.randrange(CLUSTERS)
        counted["request"][cluster] += 1
        if rng.random() < rate:
            counted["error"][cluster] += 1
    return [
        EventCount(
            flag="new-checkout",
            variant=variant,
            group=group,
            event=event,
            count=sum(clusters),
            percentage=Decimal(percentage),
            clusters=clusters,
        )
        for event, clusters in counted.items()
    ]


# --- screenshots ----------------------------------------------------------------------------


def shoot(server: Server, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    written: list[Path] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(
            base_url=server.url, viewport={"width": 1440, "height": 900}, device_scale_factor=1
        )
        page = context.new_page()

        def save(name: str, *, full: bool = False) -> None:
            path = out / f"{name}.png"
            page.wait_for_timeout(250)
            if full:  # a viewport as tall as the page keeps the sidebar whole
                height = page.evaluate("document.documentElement.scrollHeight")
                page.set_viewport_size({"width": 1440, "height": max(900, height)})
            page.screenshot(path=str(path))
            page.set_viewport_size({"width": 1440, "height": 900})
            written.append(path)

        page.goto("/ui/login")
        page.fill("input[name=username]", "maya")
        save("login")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/ui/")
        page.goto("/ui/?env=production")
        save("flags")
        page.goto("/ui/flags/pricing-page-2026?env=production")
        save("flag-detail")
        definition = FLAGS["pricing-page-2026"]
        edited = json.loads(json.dumps(definition))
        edited["environments"]["production"]["fallthrough"]["rollout"]["percentage"] = 60
        page.fill("#definition", json.dumps(edited, indent=2))
        page.click("button:has-text('Review changes')")
        page.evaluate(
            "window.scrollTo(0, document.querySelector('#definition-section').offsetTop - 76)"
        )
        save("flag-editor-review")
        page.goto("/ui/flags/new-checkout/environments/production/ramp")
        save("ramp", full=True)
        page.goto("/ui/playground?env=production&flag=new-checkout")
        page.fill(
            "textarea[name=context]",
            json.dumps(
                {"targetingKey": "user-2291", "email": "kim@example.com", "plan": "pro"}, indent=2
            ),
        )
        page.click("button:has-text('Evaluate')")
        save("playground")
        page.goto("/ui/audit")
        save("audit")
        browser.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="graylane-screenshots-") as data,
        Server(Path(data)) as server,
    ):
        seed(server)
        for path in shoot(server, args.out):
            print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    main()
