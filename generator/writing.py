"""Files written into a render, with the same bytes and modes on every machine: text, copies of
files and of folders (without caches), in a sorted order."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def write_text(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


def copy_file(source: Path, target: Path) -> None:
    """Bytes and a normalized mode (0755 if executable, else 0644): readable by the API's user
    whatever the mode in the project, and the same on every machine."""
    target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    target.chmod(0o755 if os.stat(source).st_mode & 0o111 else 0o644)


def copy_tree(source: Path, target: Path, skip_hidden: bool = False) -> None:
    """Every file below `source` (no __pycache__ or compiled files; with `skip_hidden`, no
    dot-files either), as copy_file copies it; `target` exists afterwards even when empty."""
    for folder, dirnames, filenames in os.walk(source):
        dirnames[:] = sorted(
            d for d in dirnames if d != "__pycache__" and not (skip_hidden and d.startswith("."))
        )
        here = Path(folder)
        for name in sorted(filenames):
            if name.endswith((".pyc", ".pyo")) or (skip_hidden and name.startswith(".")):
                continue
            copy_file(here / name, target / here.relative_to(source) / name)
    target.mkdir(mode=0o755, parents=True, exist_ok=True)
