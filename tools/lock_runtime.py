"""Regenerates runtime_base/requirements.lock, the exact versions (with their hashes) that the
runtime layer of every image installs (generator/runtime_lock.py says how a render uses it).

    pip install -e .                  # the tool reads the package sets from cortex_build
    python tools/lock_runtime.py      # with a CPython of the default base image's version (3.11)

What it locks, resolved together so that every set agrees on shared packages: the ranges of
runtime_base/requirements.txt, and every set a render may add to them (images.py's framework
packages for onnx, onnx on GPU and tensorflow; image_models.py's packages for models fetched at
start).
The resolution is pip's own (`pip install --dry-run --report`), for CPython of the version of
images.PYTHON_CPU_BASE on Linux with the glibc of its Debian release, wheels only. pip evaluates
environment markers against the interpreter running it, hence the check that it is that CPython.

Hashes: for each pinned version, the wheel pip picks on x86_64 and on aarch64 for several glibc
ceilings (the base image's, 2.28, 2.17), so that a build on either architecture, on any glibc the
wheels support, finds its wheel's hash. Each is the index's own hash, as pip reports it.

pip's configuration files are ignored, as are PIP_FIND_LINKS, PIP_EXTRA_INDEX_URL and
PIP_CONSTRAINT: local wheel folders and extra indexes may hold builds of their own, whose hashes an
image build (which reads the index only) would never match. PIP_INDEX_URL (or --index-url, for a
mirror of the index) and PIP_CERT are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
LOCK = REPO / "runtime_base" / "requirements.lock"
RUNTIME_REQUIREMENTS = REPO / "runtime_base" / "requirements.txt"
ARCHITECTURES = ("x86_64", "aarch64")
# python:3.11-slim-bookworm: Debian 12's glibc. Wheels are also hashed for these lower ceilings.
DEFAULT_GLIBC = 36
LOWER_GLIBC_CEILINGS = (28, 17)


def root_sets() -> dict[str, list[str]]:
    """{where a set comes from: its requirement lines}: everything a render may install in an
    image's runtime layer."""
    from cortex_build import image_models, images

    runtime = [
        line.split("#", 1)[0].strip()
        for line in RUNTIME_REQUIREMENTS.read_text(encoding="utf-8").splitlines()
    ]
    sets = {"runtime_base/requirements.txt": [line for line in runtime if line]}
    for label, packages in images.FRAMEWORK_PACKAGE_SETS.items():
        sets[f"{label} APIs"] = list(packages)
    sets["s3:// models fetched at start"] = list(image_models.S3_PACKAGES)
    sets["http(s):// models fetched at start"] = list(getattr(image_models, "HTTP_PACKAGES", ()))
    return {label: lines for label, lines in sets.items() if lines}


def default_python_version() -> str:
    from cortex_build import images

    match = re.match(r"python:(\d+\.\d+)", images.PYTHON_CPU_BASE)
    if not match:
        raise SystemExit(f"cannot tell the Python version of {images.PYTHON_CPU_BASE}")
    return match.group(1)


def platform_tags(architecture: str, glibc: int) -> list[str]:
    """pip's manylinux tags for a glibc 2.<glibc> machine, newest first (as packaging orders
    them: x86_64 down to glibc 2.5, aarch64 down to 2.17, with the legacy aliases)."""
    lowest = 5 if architecture in ("x86_64", "i686") else 17
    aliases = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    tags = []
    for minor in range(glibc, lowest - 1, -1):
        tags.append(f"manylinux_2_{minor}_{architecture}")
        if minor in aliases and (minor == 17 or architecture in ("x86_64", "i686")):
            tags.append(f"{aliases[minor]}_{architecture}")
    return tags


def pip_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_PIP_VARIABLES}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


_DROPPED_PIP_VARIABLES = ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT", "PIP_NO_INDEX")


def run_pip_report(
    python: str,
    requirements: Sequence[str],
    *,
    python_version: str,
    architecture: str,
    glibc: int,
    no_deps: bool,
    index_url: str | None,
) -> dict[str, Any]:
    """`pip install --dry-run --report` for the target platform; the report as a dict."""
    with tempfile.TemporaryDirectory(prefix="lock-runtime-") as scratch:
        requirements_file = Path(scratch) / "requirements.txt"
        requirements_file.write_text("".join(f"{line}\n" for line in requirements))
        report_file = Path(scratch) / "report.json"
        command = [
            python, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
            "--only-binary=:all:", "--implementation", "cp", "--python-version", python_version,
            "--target", str(Path(scratch) / "target"), "--report", str(report_file),
            "-r", str(requirements_file),
        ]  # fmt: skip
        for tag in platform_tags(architecture, glibc):
            command += ["--platform", tag]
        if no_deps:
            command.append("--no-deps")
        if index_url:
            command += ["--index-url", index_url]
        result = subprocess.run(
            command, capture_output=True, text=True, env=pip_environment(), check=False
        )
        if result.returncode != 0:
            raise PipFailed(result.stderr.strip() or result.stdout.strip())
        return json.loads(report_file.read_text())


class PipFailed(Exception):
    pass


def dependency_graph(report: Mapping[str, Any], roots: Sequence[str]) -> dict[str, list[str]]:
    """{canonical name: canonical names it requires}, for every package the roots need, markers
    evaluated in the report's environment with the extras that are asked for."""
    environment = dict(report["environment"])
    items = {canonicalize_name(item["metadata"]["name"]): item for item in report["install"]}
    extras: dict[str, set[str]] = {}
    pending: list[tuple[str, set[str]]] = []
    for line in roots:
        requirement = Requirement(line)
        pending.append((canonicalize_name(requirement.name), set(requirement.extras)))
    graph: dict[str, set[str]] = {}
    while pending:
        name, wanted = pending.pop()
        if name not in items:
            raise SystemExit(f"pip's report has no {name}, which the roots need")
        known = extras.setdefault(name, set())
        if name in graph and wanted <= known:
            continue
        known |= wanted
        children = graph.setdefault(name, set())
        for line in items[name]["metadata"].get("requires_dist") or []:
            requirement = Requirement(line)
            if requirement.marker is not None and not any(
                _marker_holds(requirement.marker, environment, extra) for extra in ["", *known]
            ):
                continue
            child = canonicalize_name(requirement.name)
            children.add(child)
            pending.append((child, set(requirement.extras)))
    return {name: sorted(children) for name, children in sorted(graph.items())}


def _marker_holds(marker: Marker, environment: dict[str, str], extra: str) -> bool:
    return marker.evaluate({**environment, "extra": extra})


def versions_of(report: Mapping[str, Any]) -> dict[str, str]:
    return {
        canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
        for item in report["install"]
    }


def hashes_of(report: Mapping[str, Any]) -> dict[str, str]:
    found = {}
    for item in report["install"]:
        info = item["download_info"].get("archive_info") or {}
        digest = (info.get("hashes") or {}).get("sha256")
        if digest is None and str(info.get("hash", "")).startswith("sha256="):
            digest = info["hash"].split("=", 1)[1]
        if digest:
            found[canonicalize_name(item["metadata"]["name"])] = digest
    return found


def collect_hashes(
    python: str,
    pins: Mapping[str, str],
    *,
    python_version: str,
    glibc: int,
    architectures: Sequence[str],
    index_url: str | None,
    log: Any = print,
) -> dict[str, set[str]]:
    """{name: sha256 digests}: for each architecture and glibc ceiling, the wheel pip picks for
    each pin. Every pin needs a wheel for each architecture at the base image's glibc."""
    digests: dict[str, set[str]] = {name: set() for name in pins}
    for architecture in architectures:
        for ceiling in (glibc, *[c for c in LOWER_GLIBC_CEILINGS if c < glibc]):
            remaining = dict(pins)
            while remaining:
                try:
                    report = run_pip_report(
                        python,
                        [f"{name}=={version}" for name, version in remaining.items()],
                        python_version=python_version,
                        architecture=architecture,
                        glibc=ceiling,
                        no_deps=True,
                        index_url=index_url,
                    )
                except PipFailed as failure:
                    unavailable = _unavailable(str(failure), remaining)
                    if not unavailable:
                        raise SystemExit(f"pip failed:\n{failure}") from None
                    if ceiling == glibc:
                        raise SystemExit(
                            f"no {architecture} wheel for glibc 2.{glibc} of "
                            + ", ".join(f"{n}=={remaining[n]}" for n in unavailable)
                            + " (choose other --architecture values, or loosen the range)"
                        ) from None
                    log(
                        f"  {architecture}, glibc 2.{ceiling}: no wheel of "
                        + ", ".join(unavailable)
                    )
                    for name in unavailable:
                        del remaining[name]
                    continue
                for name, digest in hashes_of(report).items():
                    digests[name].add(digest)
                break
    return digests


def _unavailable(message: str, pins: Mapping[str, str]) -> list[str]:
    found = re.findall(
        r"(?:No matching distribution found for|satisfies the requirement) (\S+)", message
    )
    names = {canonicalize_name(re.split(r"[=<>!~\[]", spec, maxsplit=1)[0]) for spec in found}
    return sorted(name for name in names if name in pins)


def lock_text(
    python_version: str,
    glibc: int,
    architectures: Sequence[str],
    sets: Mapping[str, Sequence[str]],
    versions: Mapping[str, str],
    graph: Mapping[str, Sequence[str]],
    digests: Mapping[str, set[str]],
) -> str:
    roots = "".join(f"#   {label}: {', '.join(lines)}\n" for label, lines in sets.items())
    header = (
        "# The runtime's lock: the exact versions, with their hashes, that every image's runtime\n"
        "# layer installs (pip install --require-hashes) when its Python is this lock's; on\n"
        "# another Python it installs from the ranges of requirements.txt. A user's\n"
        "# requirements.txt is installed after it, with those ranges as constraints, so a user's\n"
        "# pin within a range replaces the locked version.\n"
        "#\n"
        "# Generated by tools/lock_runtime.py: do not edit. Run it again after changing\n"
        "# requirements.txt or a package set it lists below;\n"
        "# tests/generator/test_runtime_lock.py checks that every range is locked.\n"
        "#\n"
        f"# Resolved for CPython {python_version} on Linux ({', '.join(architectures)}; wheels "
        f"for glibc 2.17 to 2.{glibc}),\n"
        "# from these sets of requirements together:\n"
        f"{roots}"
        "#\n"
        f"# python: {python_version}\n"
    )
    blocks = []
    for name in sorted(graph):
        lines = [f"{name}=={versions[name]}"]
        lines += [f"    --hash=sha256:{digest}" for digest in sorted(digests[name])]
        block = " \\\n".join(lines) + "\n"
        if graph[name]:
            block += f"    # requires: {', '.join(graph[name])}\n"
        blocks.append(block)
    return header + "".join(blocks)


def interpreter_version(python: str) -> tuple[str, str, str]:
    script = (
        "import platform, sys; "
        "print(platform.python_implementation(), '%d.%d' % sys.version_info[:2], sys.platform)"
    )
    output = subprocess.run(
        [python, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    return output[0], output[1], output[2]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the interpreter whose pip resolves: CPython of the lock's version (default: this)",
    )
    parser.add_argument("--python-version", help="default: the default base image's")
    parser.add_argument("--glibc", type=int, default=DEFAULT_GLIBC, help="2.N: give N")
    parser.add_argument(
        "--architecture",
        action="append",
        choices=ARCHITECTURES,
        help=f"repeat for several (default: {', '.join(ARCHITECTURES)})",
    )
    parser.add_argument("--index-url", help="a mirror of the package index")
    parser.add_argument("-o", "--output", type=Path, default=LOCK)
    args = parser.parse_args(argv)
    python_version = args.python_version or default_python_version()
    architectures = tuple(args.architecture or ARCHITECTURES)

    implementation, version, platform = interpreter_version(args.python)
    if (implementation, version, platform) != ("CPython", python_version, "linux"):
        print(
            f"{args.python} is {implementation} {version} on {platform}: pip evaluates markers "
            f"against the interpreter running it, so run this with CPython {python_version} on "
            "Linux (--python PATH)",
            file=sys.stderr,
        )
        return 2

    sets = root_sets()
    roots = [line for lines in sets.values() for line in lines]
    print(f"resolving {len(roots)} requirements for CPython {python_version}, glibc 2.{args.glibc}")
    try:
        report = run_pip_report(
            args.python,
            roots,
            python_version=python_version,
            architecture=architectures[0],
            glibc=args.glibc,
            no_deps=False,
            index_url=args.index_url,
        )
    except PipFailed as failure:
        print(f"pip could not resolve them:\n{failure}", file=sys.stderr)
        return 1
    graph = dependency_graph(report, roots)
    versions = versions_of(report)
    pins = {name: versions[name] for name in graph}
    print(f"hashing {len(pins)} packages for {', '.join(architectures)}")
    digests = collect_hashes(
        args.python,
        pins,
        python_version=python_version,
        glibc=args.glibc,
        architectures=architectures,
        index_url=args.index_url,
    )
    text = lock_text(python_version, args.glibc, architectures, sets, versions, graph, digests)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output} ({len(pins)} packages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
