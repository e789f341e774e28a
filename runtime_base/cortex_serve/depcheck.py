"""Build-time check that the runtime's own requirements survived the user's requirements.txt.

Images install runtime_base/requirements.txt, then the project's requirements.txt; a user pin can
silently downgrade or replace a package the server needs (pip resolves each file on its own).
Run after both installs:

    python -m cortex_serve.depcheck [--requirements /opt/cortex/runtime/requirements.txt]

It prints one line per clash, naming the package, the installed version and what the runtime
needs, and exits 1; it prints nothing and exits 0 when all is well.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from pathlib import Path
from typing import Any

DEFAULT_REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements.txt"


def _requirement_class() -> Any:
    try:
        from packaging.requirements import Requirement
    except ImportError:
        try:  # pip vendors packaging: present wherever pip installed the requirements
            from pip._vendor.packaging.requirements import Requirement
        except ImportError:
            return None
    return Requirement


def clashes(requirements_file: Path) -> list[str]:
    requirement_class = _requirement_class()
    problems = []
    for raw in requirements_file.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if requirement_class is not None:
            requirement = requirement_class(line)
            name, specifier = requirement.name, requirement.specifier
        else:
            name, specifier = line.split(">")[0].split("=")[0].split("<")[0].strip(), None
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(
                f"{name} is not installed, but the cortex runtime needs {line} "
                "(did the project's requirements.txt uninstall it?)"
            )
            continue
        if specifier is not None and not specifier.contains(installed, prereleases=True):
            problems.append(
                f"{name} {installed} is installed (the project's requirements.txt pins it), but "
                f"the cortex runtime needs {line}: pin a version that satisfies both, or drop the "
                "pin"
            )
    return problems


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cortex_serve.depcheck")
    parser.add_argument("--requirements", type=Path, default=DEFAULT_REQUIREMENTS)
    args = parser.parse_args(argv)
    problems = clashes(args.requirements)
    for problem in problems:
        print(f"cortex runtime dependency clash: {problem}", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
