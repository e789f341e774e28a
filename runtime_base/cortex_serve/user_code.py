"""The user's predictor file run and checked, with Cortex's messages: the import, and the
signatures of its classes' methods and its functions, errors naming the file and the line.

Signatures are checked before anything runs. The caller has already put the project root and
python_path on sys.path, made the project root the working folder and loaded .env and
predictor.env into the environment.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .predictor import PredictorError

MODULE_NAME = "cortex_predictor"  # the name Cortex imported predictor files under


@dataclass(frozen=True)
class Where:
    """Prefixes every message with the API and the predictor file, as Cortex named the file."""

    api: str
    file: str  # as the config names it
    source: str  # the path it is imported from (what tracebacks name)

    def error(self, *parts: str) -> PredictorError:
        return PredictorError(": ".join((self.api, self.file, *parts)))

    def failure(self, doing: str, error: BaseException) -> PredictorError:
        """`doing` raised `error` in the user's code: say what, and where in the user's file."""
        detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        return self.error(f"{doing} failed{self.line_of(error)}", detail)

    def line_of(self, error: BaseException) -> str:
        """ " (line N)": the innermost frame of the traceback in the user's file (deeper frames
        are in the exception's traceback, which the caller keeps as __cause__)."""
        lines = [
            frame.lineno
            for frame in traceback.extract_tb(error.__traceback__)
            if frame.filename == self.source
        ]
        return f" (line {lines[-1]})" if lines else ""


@dataclass(frozen=True)
class ApiCode:
    """The API whose user code is being loaded, as every loader and client builder reads it:
    api.json (as a dict), the project folder, and `where` (the file that messages name)."""

    spec: Mapping[str, Any]
    project_dir: Path
    where: Where


def import_user_module(file: Path, where: Where) -> ModuleType:
    """Runs the user's file as the module `cortex_predictor` (registered in sys.modules, so
    pickle, dataclasses and typing find it)."""
    if not file.is_file():
        raise where.error(f"file not found (looked for {file})")
    import_spec = importlib.util.spec_from_file_location(MODULE_NAME, file)
    assert import_spec is not None and import_spec.loader is not None
    module = importlib.util.module_from_spec(import_spec)
    sys.modules[MODULE_NAME] = module
    try:
        import_spec.loader.exec_module(module)
    except SyntaxError as error:
        sys.modules.pop(MODULE_NAME, None)
        raise where.error(f"line {error.lineno}", f"syntax error: {error.msg}") from error
    except ModuleNotFoundError as error:
        sys.modules.pop(MODULE_NAME, None)
        missing = (error.name or str(error)).split(".")[0]
        raise where.error(
            f'import failed{where.line_of(error)}: no module named "{missing}"; '
            "if it is a pip package, add it to requirements.txt in the project root"
        ) from error
    except BaseException as error:
        sys.modules.pop(MODULE_NAME, None)
        raise where.failure("import", error) from error
    return module


@dataclass(frozen=True)
class Method:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()


def argument_names(func: Callable[..., Any]) -> list[str]:
    return inspect.getfullargspec(func).args


def check_method(cls: Any, method: Method) -> list[str]:
    """The method's argument names (self included), or a PredictorError with Cortex's message."""
    owner = f"class {cls.__name__}"
    func = getattr(cls, method.name, None)
    if func is None:
        raise PredictorError(owner, f'required method "{method.name}" is not defined')
    if not callable(func):
        raise PredictorError(owner, f'"{method.name}" is defined, but is not a method')
    args = argument_names(func)
    invalid = f'invalid signature for method "{method.name}({", ".join(args)})"'
    for name in method.required:
        if name not in args:
            raise PredictorError(
                owner, invalid, f'"{name}" is a required argument, but was not provided'
            )
    if args[0] != "self":
        raise PredictorError(owner, invalid, '"self" must be the first argument')
    for name in args:
        if name not in method.required and name not in method.optional:
            raise PredictorError(owner, invalid, f'"{name}" is not a supported argument')
    return args


def check_class(
    cls: Any, required: Sequence[Method], optional: Sequence[Method], where: Where
) -> dict[str, list[str]]:
    """The argument names (self included) of the user's class' methods: each `required` one (an
    __init__ the class does not define takes none) and each `optional` one it defines; Cortex's
    message, naming the file, for the first that does not fit."""
    names: dict[str, list[str]] = {}
    try:
        for method in required:
            if method.name == "__init__" and not has_own_init(cls):
                names[method.name] = ["self"]
            else:
                names[method.name] = check_method(cls, method)
        for method in optional:
            if getattr(cls, method.name, None) is not None:
                names[method.name] = check_method(cls, method)
    except PredictorError as error:
        raise where.error(*error.args) from None
    return names


def has_own_init(cls: Any) -> bool:
    # A class without __init__ (Cortex's docs show some) is built with no arguments.
    return cls.__init__ is not object.__init__


def injector(func: Callable[..., Any], offered: Sequence[str], wanted: Sequence[str]) -> Any:
    """A callable taking the `offered` arguments positionally and passing `func` only the
    `wanted` ones (in `wanted`'s order); async when `func` is."""
    if tuple(wanted) == tuple(offered):
        return func
    positions = tuple(offered.index(name) for name in wanted)
    if inspect.iscoroutinefunction(func):

        async def call_async(*args: Any) -> Any:
            return await func(*[args[i] for i in positions])

        return call_async

    def call(*args: Any) -> Any:
        return func(*[args[i] for i in positions])

    return call
