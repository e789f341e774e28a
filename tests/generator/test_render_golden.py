"""Golden files: each example's rendered output, byte for byte.

tests/generator/golden/<example>/ holds the files cortex-build writes itself (Dockerfile, cortex/*,
docker-compose.yaml) verbatim, and MANIFEST listing every file of OUT with its mode and sha256
(symlinks with their target), except runtime/ (a copy of runtime_base, checked in test_render.py)
and k8s/ (tests/generator/test_k8s.py). After an intended change, regenerate them and review
the diff:

    CORTEX_BUILD_UPDATE_GOLDEN=1 pytest tests/generator/test_render_golden.py
"""

from __future__ import annotations

import difflib
import hashlib
import os
import shutil
import stat
from pathlib import Path

import pytest
from cortex_build.config import load_project
from cortex_build.render import render_project

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("CORTEX_BUILD_UPDATE_GOLDEN") == "1"


def example_names() -> list[str]:
    if not EXAMPLES.is_dir():
        return []
    return sorted(p.name for p in EXAMPLES.iterdir() if (p / "cortex.yaml").is_file())


def is_verbatim(rel: str) -> bool:
    """Files cortex-build writes itself (the rest are copies, listed in MANIFEST by hash)."""
    parts = rel.split("/")
    return rel == "docker-compose.yaml" or parts[1:] == ["Dockerfile"] or parts[1:2] == ["cortex"]


def is_skipped(rel_dir: str) -> bool:
    parts = rel_dir.split("/")
    return rel_dir == "k8s" or (len(parts) == 2 and parts[1] == "runtime")


def snapshot(out: Path) -> dict[str, str]:
    """{golden file name: content} for a rendered OUT."""
    files: dict[str, str] = {}
    manifest: list[tuple[str, str]] = []
    for folder, dirnames, filenames in os.walk(out):
        here = Path(folder)
        dirnames[:] = sorted(
            d for d in dirnames if not is_skipped((here / d).relative_to(out).as_posix())
        )
        links_to_folders = [d for d in dirnames if (here / d).is_symlink()]
        for name in filenames + links_to_folders:
            path = here / name
            rel = path.relative_to(out).as_posix()
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                manifest.append((rel, f"link -> {os.readlink(path)}"))
                continue
            data = path.read_bytes()
            manifest.append(
                (rel, f"{oct(info.st_mode & 0o777)} {hashlib.sha256(data).hexdigest()}")
            )
            if is_verbatim(rel):
                files[rel] = data.decode("utf-8")
    files["MANIFEST"] = "".join(f"{what}  {rel}\n" for rel, what in sorted(manifest))
    return files


def read_golden(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def write_golden(folder: Path, files: dict[str, str]) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize("example", example_names())
def test_example_renders_as_its_golden_files(example: str, tmp_path: Path) -> None:
    # A copy beside OUT: the compose file's env_file path is then the same on every machine.
    project_dir = tmp_path / example
    shutil.copytree(EXAMPLES / example, project_dir, symlinks=True)
    render_project(load_project(project_dir), tmp_path / "out")
    got = snapshot(tmp_path / "out")
    golden = GOLDEN / example
    if UPDATE:
        write_golden(golden, got)
        return
    if not golden.is_dir():
        pytest.fail(
            f"no golden files for example {example}; create them with "
            "CORTEX_BUILD_UPDATE_GOLDEN=1 pytest tests/generator/test_render_golden.py"
        )
    expected = read_golden(golden)
    for name in sorted(set(expected) | set(got)):
        if expected.get(name) != got.get(name):
            diff = "".join(
                difflib.unified_diff(
                    expected.get(name, "").splitlines(keepends=True),
                    got.get(name, "").splitlines(keepends=True),
                    f"golden/{example}/{name}",
                    f"rendered/{name}",
                )
            )
            pytest.fail(
                f"{example}: {name} differs from its golden file (if intended, regenerate with "
                f"CORTEX_BUILD_UPDATE_GOLDEN=1):\n{diff}"
            )


def test_every_example_with_a_config_has_golden_files() -> None:
    """Stale golden folders (an example renamed or removed) are caught too."""
    if UPDATE:
        for folder in GOLDEN.iterdir() if GOLDEN.is_dir() else []:
            if folder.name not in example_names():
                shutil.rmtree(folder)
        return
    stored = sorted(p.name for p in GOLDEN.iterdir()) if GOLDEN.is_dir() else []
    assert stored == example_names()
