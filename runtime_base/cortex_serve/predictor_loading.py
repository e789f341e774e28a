"""Which shape a user's predictor file has, and loading it behind the `Predictor` interface:
`load_predictor`, the one entry point of the server (worker.py), `cortex-build predict` and
the tests.

The shape is chosen by what the file defines, and must agree with `predictor.interface` in
api.json (which the generator derived from the config's generation): "class" and "handler"
(predictor_classes.py), "functions" and "handlers" (predictor_modules.py).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from .contract import (
    HANDLER_CLASS,
    PREDICTOR_CLASSES as CLASS_NAMES,
    REQUEST_HANDLER_FUNCTIONS as HANDLER_NAMES,
)
from .predictor import Predictor
from .predictor_classes import load_class, load_handler
from .predictor_modules import load_functions, load_handlers
from .user_code import ApiCode, Where, import_user_module

# in the order a mismatch message names them
INTERFACES = ("class", "functions", "handlers", "handler")


def load_predictor(spec: Mapping[str, Any], project_dir: Path) -> Predictor:
    """Imports the predictor file of `spec` (api.json as a dict) and initialises it.

    Raises PredictorError with a Cortex-like message on a bad signature or a failing init.
    """
    predictor_spec = spec["predictor"]
    path = predictor_spec.get("path") or ""
    where = Where(spec.get("name", "api"), path or "predictor", str(project_dir / path))
    interface = predictor_spec.get("interface", "class")
    module = import_user_module(Path(where.source), where) if path else None
    defined = [shape for shape in INTERFACES if _defines(module, shape)]
    # Handlers are optional (a v0.9 API may serve a bare model), so a file defining none of the
    # three shapes is a "handlers" file.
    if interface not in defined and not (interface == "handlers" and not defined):
        found = defined[0] if defined else None
        raise where.error(_mismatch_message(interface, found, predictor_spec["type"]))
    api = ApiCode(spec, project_dir, where)
    if interface == "class":
        assert module is not None
        return load_class(module, api)
    if interface == "functions":
        assert module is not None
        return load_functions(module, api)
    if interface == "handler":
        assert module is not None
        return load_handler(module, api)
    return load_handlers(module, api)


def _mismatch_message(interface: str, found: str | None, predictor_type: str) -> str:
    wanted = {
        "class": f"a class {CLASS_NAMES.get(predictor_type, 'PythonPredictor')}",
        "functions": "a module-level predict(sample, metadata) function (and optionally init)",
        "handlers": "only pre_inference/post_inference request handlers",
        "handler": f"a class {HANDLER_CLASS}",
    }[interface]
    defined = {
        None: "none of these",
        "class": "a predictor class",
        "functions": "module-level predict/init functions (the v0.9-v0.11 interface)",
        "handlers": "pre_inference/post_inference request handlers (the v0.9 interface)",
        "handler": f"a class {HANDLER_CLASS} (the v0.34-v0.35 interface)",
    }[found]
    return (
        f"the configuration expects {wanted} (predictor type {predictor_type}, "
        f'interface "{interface}"), but the file defines {defined}'
    )


def _defines(module: ModuleType | None, interface: str) -> bool:
    """Whether the module has what `interface` asks for (a file may have several: a handlers
    file can import a function named predict)."""
    if module is None:
        return False
    if interface == "class":
        return any(inspect.isclass(getattr(module, name, None)) for name in CLASS_NAMES.values())
    if interface == "functions":
        return callable(getattr(module, "predict", None))
    if interface == "handler":
        return inspect.isclass(getattr(module, HANDLER_CLASS, None))
    return any(callable(getattr(module, name, None)) for name in HANDLER_NAMES)
