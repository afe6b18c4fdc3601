"""What guards read: SDK observations of a flag, and signals from outside."""

from __future__ import annotations

import httpx
import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from graylane.core.model import RampPlan
from graylane_server import prometheus_urls
from graylane_server.models import GuardAlertRow
from graylane_server.ramps.guards import External
from graylane_server.ramps.observations import Observations
from graylane_server.usage.observed import observations_of
from graylane_server.usage.store import UsageStore

log = structlog.get_logger(__name__)


def observations(
    usage: UsageStore, environment: str, flag: str, since: float, until: float
) -> Observations:
    """What SDKs counted for `flag` in the buckets that start in [bucket_of(since), until),
    filed by the end of each SDK window (so a window that began before a stage change is
    in the stage's first bucket or later) and by the rollout percentage that produced each
    count. Pass `since` = the stage's start (or earlier, to carry evidence over) and
    `until` = now + BUCKET_SECONDS so the bucket in progress is included."""
    return observations_of(usage.read_all(environment, flag, since, until))


def external(session: Session, plan: RampPlan, prometheus_url: str | None) -> External:
    values: dict[str, float | None] = {}
    firing: dict[str, bool] = {}
    for guard in plan.guards:
        if guard.kind == "prometheus":
            url = guard.url or prometheus_url
            if guard.url and not prometheus_urls.may_query(session, guard.url, prometheus_url):
                # Stored before the operator narrowed the list: inconclusive, never queried.
                log.warning("guard.prometheus_not_allowed", url=guard.url, guard=guard.label)
                url = None
            values[guard.label] = query_prometheus(url, guard.query or "")
        elif guard.kind == "webhook":
            row = session.get(GuardAlertRow, guard.label)
            firing[guard.label] = bool(row is not None and row.firing)
    return External(values=values, firing=firing)


def query_prometheus(url: str | None, query: str) -> float | None:
    """The first sample of an instant query; None when there is no Prometheus, no data,
    or no answer in two seconds (the guard is then inconclusive and holds)."""
    if not url:
        return None
    try:
        response = httpx.get(f"{url.rstrip('/')}/api/v1/query", params={"query": query}, timeout=2)
        result = response.json()["data"]["result"]
        return float(result[0]["value"][1]) if result else None
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
        log.warning("guard.prometheus_unavailable", url=url, error=str(exc))
        return None


def firing_alerts(session: Session) -> dict[str, bool]:
    return {row.name: row.firing for row in session.scalars(select(GuardAlertRow))}
