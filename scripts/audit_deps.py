"""Audit the locked runtime dependencies (`pylock.toml`) for known vulnerabilities.

What is audited is what is tested: `make install` installs under the lock's constraints,
and this first checks that every locked package is installed here at its locked release.

pip-audit does the work. It asks PyPI's per-release JSON API, which some networks (such
as CI runners that only reach PyPI's project pages) do not answer; for a package it could
not audit, and whose locked release is PyPI's newest, this falls back to the project
page, whose `vulnerabilities` are the newest release's. Exits 1 on any known
vulnerability, on any locked package that could not be audited (a locked release that is
no longer the newest: re-lock with `make lock`), and on any installed release that is
not the locked one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import httpx
from locked import locked_versions
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPI = "https://pypi.org/pypi"


RUNTIME_EXTRAS = ("server", "openfeature", "cli")


def runtime_closure() -> set[str]:
    """Every package the installed project needs at run time (its runtime extras
    included), following installed metadata."""
    seen: set[str] = set()
    pending = [(f"graylane[{','.join(RUNTIME_EXTRAS)}]", "")]
    while pending:
        requirement, extra = pending.pop()
        req = Requirement(requirement)
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(req.name)
        for wanted in req.extras or {""}:
            key = f"{name}[{wanted}]"
            if key in seen:
                continue
            seen.add(key)
            pending.extend((dep, wanted) for dep in metadata.requires(name) or [])
    return {key.split("[")[0] for key in seen} - {"graylane"}


def not_as_locked(versions: dict[str, str]) -> list[str]:
    """Locked packages that this environment lacks or holds at another release."""
    wrong = []
    for name, version in sorted(versions.items()):
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "missing"
        if installed != version:
            wrong.append(f"{name}=={version} (installed: {installed})")
    return wrong


def pip_audit() -> list[dict[str, object]]:
    """pip-audit's verdict per locked package (`vulns`, or a `skip_reason`)."""
    run = subprocess.run(  # noqa: S603 - a fixed command line
        [sys.executable, "-m", "pip_audit", "--locked", str(ROOT), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    if not run.stdout.strip():
        raise SystemExit(f"pip-audit failed:\n{run.stderr}")
    dependencies: list[dict[str, object]] = json.loads(run.stdout)["dependencies"]
    return dependencies


def newest_release_vulns(client: httpx.Client, name: str, version: str) -> list[str] | None:
    """Vulnerability ids of `name==version` from PyPI's project page, or None when the
    locked release is not the newest (the page only speaks for the newest)."""
    response = client.get(f"{PYPI}/{name}/json")
    response.raise_for_status()
    page = response.json()
    if page["info"]["version"] != version:
        return None
    return [v["id"] for v in page.get("vulnerabilities", []) if not v.get("withdrawn")]


def main() -> int:
    versions = locked_versions()
    mismatched = not_as_locked(versions)
    for requirement in mismatched:
        print(f"not the locked release (run `make install`): {requirement}")
    unlocked = sorted(runtime_closure() - {canonicalize_name(n) for n in versions})
    for name in unlocked:
        print(f"a runtime dependency missing from pylock.toml (run `make lock`): {name}")
    mismatched += unlocked
    found: dict[str, list[str]] = {}
    unaudited: list[str] = []
    audited = 0
    with httpx.Client(timeout=20) as client:
        for dependency in pip_audit():
            name = str(dependency["name"])
            if name not in versions:
                continue  # the project itself
            if "skip_reason" not in dependency:
                audited += 1
                vulns = dependency.get("vulns") or []
                assert isinstance(vulns, list)
                if vulns:
                    found[name] = [str(v["id"]) for v in vulns]
                continue
            ids = newest_release_vulns(client, name, versions[name])
            if ids is None:
                unaudited.append(f"{name}=={versions[name]}")
                continue
            audited += 1
            if ids:
                found[name] = ids
    for name, ids in sorted(found.items()):
        print(f"VULNERABLE {name}=={versions[name]}: {', '.join(ids)}")
    for requirement in unaudited:
        print(f"not audited (no longer PyPI's newest; run `make lock`): {requirement}")
    print(f"{audited} of {len(versions)} locked packages audited, {len(found)} vulnerable")
    if audited == 0:
        print("nothing could be audited: is PyPI reachable?", file=sys.stderr)
    return 1 if found or unaudited or mismatched or audited == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
