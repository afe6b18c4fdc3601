"""The Unleash open-source server for the comparison: installed with npm (a pinned
`unleash-server` and a Node.js it supports, from the npm package `node-<os>-<arch>`) once
into a cache folder outside the repository, and started as one Node process by a small
start file written next to it, on a free port of 127.0.0.1, with its own database and an
admin, a backend and a frontend API token given at start.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from bench.servers import free_port
from harness import ENVIRONMENT
from sqlalchemy import make_url

UNLEASH_VERSION = "8.2.0"
"""The newest unleash-server on npm when this was written; bump it deliberately."""
NODE_VERSION = "22.23.3"
"""The Node.js that runs it (unleash-server 8 declares `engines: node >= 22`)."""
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "graylane-bench"
MARKER = "graylane-bench.json"
INSTALL_DIR = CACHE / f"unleash-{UNLEASH_VERSION}-node-{NODE_VERSION}"
"""Where the pinned install goes unless told otherwise."""

START_FILE = """\
// Starts unleash-server for graylane's load_tests/peers/unleash.py. Written by that
// script; the settings come in the environment variable UNLEASH_BENCH_SETTINGS.
import { start } from 'unleash-server';

const settings = JSON.parse(process.env.UNLEASH_BENCH_SETTINGS);
const unleash = await start({
  db: { ...settings.db, ssl: false },
  server: { host: '127.0.0.1', port: settings.port, gracefulShutdownEnable: false },
  logLevel: 'error',
  versionCheck: { enable: false },
  // Every request of the benchmark comes from 127.0.0.1, one client address: without
  // this, the per-address limit on the SDK APIs (20,000 a minute) would answer 429.
  rateLimiting: {
    sdkApiMaxPerMinute: settings.rateLimit,
    tokenAuthenticationMaxPerMinute: settings.rateLimit,
  },
  authentication: { createAdminUser: false, initApiTokens: settings.tokens },
});

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(1), 10000).unref();
  await unleash.stop();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
"""


def node_package() -> str:
    """The npm package that carries a Node.js binary for this machine."""
    system = {"Linux": "linux", "Darwin": "darwin"}.get(platform.system())
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower()
    )
    if system is None or arch is None:
        raise SystemExit(f"no Node.js package for {platform.system()} {platform.machine()}")
    return f"node-{system}-{arch}"


def ensure_unleash(path: Path, rebuild: bool) -> Path:
    """The Node binary of the pinned install in `path`, installing it when needed."""
    package = node_package()
    node = path / "node_modules" / package / "bin" / "node"
    wanted = {"unleash-server": UNLEASH_VERSION, package: NODE_VERSION}
    marker = path / MARKER
    installed = False
    with contextlib.suppress(OSError, ValueError):
        installed = json.loads(marker.read_text()) == wanted and node.exists()
    if not installed or rebuild:
        if path.exists():
            if not (path / "package.json").exists() and any(path.iterdir()):
                raise SystemExit(f"{path} holds something else; move it or pass --unleash-dir")
            shutil.rmtree(path)
        print(f"installing unleash-server {UNLEASH_VERSION} and Node {NODE_VERSION} with npm "
              f"into {path} (once; about a minute) ...", flush=True)  # fmt: skip
        path.mkdir(parents=True)
        manifest = {"name": "graylane-bench-unleash", "private": True, "dependencies": wanted}
        (path / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm is needed to install the Unleash server")
        done = subprocess.run(  # noqa: S603
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if done.returncode != 0 or not node.exists():
            print(done.stdout[-3000:] + done.stderr[-3000:])
            raise SystemExit(f"npm install in {path} failed")
        marker.write_text(json.dumps(wanted))
    (path / "start.mjs").write_text(START_FILE)
    return node


class UnleashServer:
    """`node start.mjs` in the install folder, on a free port of 127.0.0.1."""

    def __init__(self, node: Path, folder: Path, settings: dict[str, Any], log: Path) -> None:
        self.node = node
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = {**settings, "port": self.port}
        self.log_path = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> UnleashServer:
        env = {
            **os.environ,
            "UNLEASH_BENCH_SETTINGS": json.dumps(self.settings),
            "NODE_ENV": "production",
            "SEND_TELEMETRY": "false",
            "CHECK_VERSION": "false",
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                [str(self.node), "start.mjs"],
                cwd=self.folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Unleash exited early:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            time.sleep(0.2)
        raise RuntimeError(f"Unleash did not answer /health in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def unleash_settings(database_url: str, tokens: dict[str, str]) -> dict[str, Any]:
    url = make_url(database_url)
    db = {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username or "postgres",
        "password": url.password or "",
        "database": url.database,
    }
    init = [
        {
            "type": kind,
            "secret": secret,
            "projects": ["*"],
            "environment": "*" if kind == "admin" else ENVIRONMENT,
            "tokenName": f"bench-{kind}",
        }
        for kind, secret in tokens.items()
    ]
    return {"db": db, "tokens": init, "rateLimit": 1_000_000_000}


def unleash_tokens() -> dict[str, str]:
    """Secrets in Unleash's `<project>:<environment>.<random>` shape."""
    return {
        "admin": f"*:*.{secrets.token_hex(24)}",
        "backend": f"*:{ENVIRONMENT}.{secrets.token_hex(24)}",
        "frontend": f"*:{ENVIRONMENT}.{secrets.token_hex(24)}",
    }


def node_version(node: Path) -> str:
    done = subprocess.run(  # noqa: S603
        [str(node), "--version"], capture_output=True, text=True, check=True
    )
    return done.stdout.strip().lstrip("v")
