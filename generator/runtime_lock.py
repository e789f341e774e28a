"""The runtime's lock (runtime_base/requirements.lock): exact versions, with hashes, of every
package the runtime layer of an image installs.

runtime_base/requirements.txt holds ranges: they are what a user's requirements.txt is checked
against (pip constraints, install-requirements.sh), so they stay wide. Installing from them alone
would make two builds of one render differ as new releases come out, so the image's runtime layer
installs from the lock instead (`pip install --require-hashes`), when the image's Python is the
one the lock was made for; on any other Python it installs from the ranges.

tools/lock_runtime.py writes the lock, one block per package:

    anyio==4.16.0 \\
        --hash=sha256:... \\
        --hash=sha256:...
        # requires: idna, typing-extensions

covering the runtime's requirements and every set of packages a render can add to them (the
predictor types' clients, the model fetchers'), resolved together. `# requires:` names the
package's own requirements on that Python, so a render copies just the closure of one API's
requirements into its build context (cortex/runtime-requirements.lock), and pip, which checks in
hash mode that every dependency is listed, finds the set complete.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from .runtime_files import LOCK_FILE

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")
_REQUIRES = re.compile(r"^\s+# requires: (.*)$")
_PYTHON = re.compile(r"^# python: (\d+\.\d+)\s*$")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


class LockError(Exception):
    """The lock is missing, unreadable or does not cover a requirement: a packaging bug of
    cortex-build (tests/generator/test_runtime_lock.py), not a problem of the user's project."""


def canonical_name(name: str) -> str:
    """PEP 503: `Typing_Extensions` and `typing.extensions` are `typing-extensions`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(line: str) -> str | None:
    """The canonical distribution name of a requirement line (`starlette>=0.27` -> starlette);
    None for comments, blank lines and options."""
    text = line.split("#", 1)[0].strip()
    if not text or text.startswith("-"):
        return None
    match = _NAME.match(text)
    return canonical_name(match.group(1)) if match else None


@dataclass(frozen=True)
class LockedPackage:
    name: str  # canonical
    version: str
    block: str  # its lines in the lock, verbatim: the pin, its hashes, its comments
    requires: tuple[str, ...]  # canonical names, all in the lock

    @property
    def hashes(self) -> tuple[str, ...]:
        return tuple(re.findall(r"--hash=(sha256:[0-9a-f]{64})", self.block))


@dataclass(frozen=True)
class RuntimeLock:
    python: str  # "3.11": the major.minor the lock was resolved for
    packages: dict[str, LockedPackage]  # canonical name -> package, in the lock's order

    def closure(self, requirements: Iterable[str]) -> list[LockedPackage]:
        """The locked packages that `requirements` (lines of a requirements file) need: each
        named one and, recursively, what it requires; in the lock's order."""
        wanted: set[str] = set()
        pending = [name for name in map(requirement_name, requirements) if name]
        missing = sorted({name for name in pending if name not in self.packages})
        if missing:
            raise LockError(
                f"{LOCK_FILE.name} does not lock {', '.join(missing)}: run tools/lock_runtime.py"
            )
        while pending:
            name = pending.pop()
            if name not in wanted:
                wanted.add(name)
                pending.extend(self.packages[name].requires)
        return [package for name, package in self.packages.items() if name in wanted]

    def render(self, requirements: Iterable[str]) -> str:
        """cortex/runtime-requirements.lock of one API: the closure of its runtime
        requirements, pins and hashes as in the lock."""
        blocks = "".join(package.block for package in self.closure(requirements))
        return (
            "# Rendered by cortex-build from its runtime lock: the exact versions (and hashes) of\n"
            "# the runtime-requirements.txt packages and their dependencies, for Python "
            f"{self.python}.\n" + blocks
        )


def parse_lock(text: str) -> RuntimeLock:
    python = None
    blocks: list[list[str]] = []
    for line in text.splitlines(keepends=True):
        if blocks and line[:1].isspace() and line.strip():
            blocks[-1].append(line)  # a hash or a comment of the package above
        elif _PIN.match(line):
            blocks.append([line])
        elif match := _PYTHON.match(line):
            python = match.group(1)
        elif line.strip() and not line.startswith("#"):
            raise LockError(f"{LOCK_FILE.name}: cannot read the line {line.strip()!r}")
    if python is None:
        raise LockError(f"{LOCK_FILE.name} has no '# python: X.Y' line")
    packages: dict[str, LockedPackage] = {}
    for lines in blocks:
        pin = _PIN.match(lines[0])
        assert pin is not None
        requires: tuple[str, ...] = ()
        for line in lines[1:]:
            if match := _REQUIRES.match(line):
                requires = tuple(canonical_name(n.strip()) for n in match.group(1).split(","))
        name = canonical_name(pin.group(1))
        packages[name] = LockedPackage(name, pin.group(2), "".join(lines), requires)
    for package in packages.values():
        unknown = [name for name in package.requires if name not in packages]
        if unknown:
            raise LockError(
                f"{LOCK_FILE.name}: {package.name} requires {', '.join(unknown)}, which it does "
                "not lock"
            )
    return RuntimeLock(python, packages)


@lru_cache(maxsize=1)
def load_lock() -> RuntimeLock:
    try:
        text = LOCK_FILE.read_text(encoding="utf-8")
    except OSError as err:
        raise LockError(f"cannot read {LOCK_FILE}: {err.strerror or err}") from None
    return parse_lock(text)
