"""The locked runtime dependencies (`pylock.toml`), as pip constraints.

`make install` installs the project under these constraints, so the suite runs against
exactly the releases that `make audit` audits. Standard library only: it runs before the
virtualenv holds anything.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

LOCK = Path(__file__).resolve().parent.parent / "pylock.toml"


def locked_versions() -> dict[str, str]:
    """name -> version of every locked package (the project itself has no version)."""
    packages = tomllib.loads(LOCK.read_text())["packages"]
    return {p["name"]: p["version"] for p in packages if "version" in p}


def main() -> int:
    for name, version in sorted(locked_versions().items()):
        print(f"{name}=={version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
