"""Where the installed serving runtime is: the packages images copy, and its requirement files.

cortex-build installs the runtime as the top-level packages `cortex_serve` and `cortex_internal`,
the import names it has inside images, so the generator, `cortex-build serve` and the tests all
import it by the same names. Its requirement files ship as data of `cortex_build.runtime_base`.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from cortex_serve.contract import RUNTIME_MODULES

from . import runtime_base

REQUIREMENTS_FILE = Path(runtime_base.__file__).parent / "requirements.txt"  # ranges
LOCK_FILE = Path(runtime_base.__file__).parent / "requirements.lock"  # exact pins, hashes


def package_dirs() -> dict[str, Path]:
    """{import name: folder} of each runtime package an image copies."""
    return {
        name: Path(importlib.import_module(name).__file__ or "").parent for name in RUNTIME_MODULES
    }
