"""Where the installed serving runtime is: the packages images copy, and its requirement files.

cortex-build installs the runtime as the top-level packages `cortex_serve` and `cortex_internal`,
the import names it has inside images, so the generator, `cortex-build serve` and the tests all
import it by the same names. Its requirement files ship as data of `cortex_build.runtime_base`.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from cortex_serve.contract import RUNTIME_MODULES


def package_folder(name: str) -> Path:
    """The folder of an installed package, by import name: `cortex_build.templates` is the
    repository's templates/ (setup.cfg's package_dir), which no relative import can name."""
    return Path(importlib.import_module(name).__file__ or "").parent


REQUIREMENTS_FILE = package_folder("cortex_build.runtime_base") / "requirements.txt"  # ranges
LOCK_FILE = package_folder("cortex_build.runtime_base") / "requirements.lock"  # exact pins


def package_dirs() -> dict[str, Path]:
    """{import name: folder} of each runtime package an image copies."""
    return {name: package_folder(name) for name in RUNTIME_MODULES}
