"""Loading a user's predictor, whatever its generation, behind one small interface.

The server (app.py) only ever calls `load_predictor(spec, project_dir)` and then the methods of the
returned `Predictor`; every difference between generations (classes vs module functions vs
pre/post_inference handlers, constructor arguments injected by name, which arguments `predict`
names) is absorbed here.

The shape is chosen by what the file defines, and must agree with `predictor.interface` in
api.json (which the generator derived from the config's generation):
- "class": `PythonPredictor` / `TensorFlowPredictor` / `ONNXPredictor` (v0.12 and later), with
  `__init__(self, config[, <type>_client])`, `predict(self[, payload][, query_params][, headers])`,
  optional `post_predict(self[, response, payload, query_params, headers])` and `load_model`;
- "functions": module-level `init(metadata)` or `init(model_path, metadata)` (optional) and
  `predict(sample, metadata)` (v0.9-v0.11);
- "handlers": optional module-level `pre_inference(sample, [signature,] metadata)` and
  `post_inference(prediction, [signature,] metadata)` around a TensorFlow or ONNX model (v0.9);
- "handler": a class `Handler` (v0.34-v0.35, python or tensorflow type) with
  `__init__(self[, config][, model_client | tensorflow_client])` and one method per HTTP verb,
  `handle_post`, `handle_get`, ... `(self[, payload][, query_params][, headers])`, at least one;
  `load_model` as for "class". The server routes each verb through `verbs`.

Signatures are checked before anything runs, with Cortex's messages. The caller has already put
the project root and python_path on sys.path, made the project root the working folder and loaded
.env and predictor.env into the environment.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from .contract import HANDLER_CLASS, HANDLER_METHODS
from .contract import PREDICTOR_CLASSES as CLASS_NAMES
from .contract import REQUEST_HANDLER_FUNCTIONS as HANDLER_NAMES
from .model_sources import LATEST, ModelSourceError, resolve_local_path, resolve_models

MODULE_NAME = "cortex_predictor"  # the name Cortex imported predictor files under

CLIENT_ARGS = {"python": "python_client", "tensorflow": "tensorflow_client", "onnx": "onnx_client"}

# in the order a mismatch message names them
INTERFACES = ("class", "functions", "handlers", "handler")
REQUEST_ARGS = ("payload", "query_params", "headers")
POST_PREDICT_ARGS = ("response", *REQUEST_ARGS)


class PredictorError(Exception):
    """The user's predictor cannot be loaded or initialised; the message is shown as it is."""


@dataclass(frozen=True)
class VerbMethod:
    """One `handle_<verb>` of a Handler: `call(payload, query_params, headers)` passes only the
    arguments the method names (a coroutine function when the method is `async def`)."""

    call: Callable[[Any, Any, Any], Any]
    is_async: bool
    wants_payload: bool  # Cortex parsed the body only for a method that names `payload`
    args: tuple[str, ...] = ()  # the REQUEST_ARGS the method names, in its order (openapi.py)


class Predictor(Protocol):
    is_async: bool  # True when the user's predict is `async def` (runs on the event loop)
    has_post_predict: bool
    interface: str
    # interface "handler": the methods by HTTP verb ("POST", "GET", ...); `predict` is
    # handle_post's (the one that may be batched). Empty for the other interfaces.
    verbs: Mapping[str, VerbMethod]
    # the REQUEST_ARGS the user's predict (or handle_post) names: what openapi.py documents
    predict_args: tuple[str, ...]

    def predict(self, payload: Any, query_params: Any, headers: Any) -> Any:
        """Calls the user's predict with only the arguments it names (awaitable if is_async)."""

    def post_predict(self, response: Any, payload: Any, query_params: Any, headers: Any) -> Any:
        """Calls the user's post_predict (if any) with only the arguments it names; a coroutine
        function when the user's post_predict is `async def`."""


@dataclass
class LoadedPredictor:
    """The `Predictor` that load_predictor returns; `predict`/`post_predict` are plain callables
    (coroutine functions when the user's are `async def`), so the server can test them with
    asyncio.iscoroutinefunction."""

    predict: Callable[[Any, Any, Any], Any]
    post_predict: Callable[[Any, Any, Any, Any], Any]
    is_async: bool
    has_post_predict: bool
    interface: str
    user_object: Any  # the predictor instance, or the module for functions/handlers
    client: Any = None  # the python/tensorflow/onnx client handed to the user, if any
    verbs: Mapping[str, VerbMethod] = field(default_factory=dict)  # interface "handler" only
    predict_args: tuple[str, ...] = REQUEST_ARGS


def load_predictor(spec: Mapping[str, Any], project_dir: Path) -> Predictor:
    """Imports the predictor file of `spec` (api.json as a dict) and initialises it.

    Raises PredictorError with a Cortex-like message on a bad signature or a failing init.
    """
    predictor_spec = spec["predictor"]
    path = predictor_spec.get("path") or ""
    where = _Where(spec.get("name", "api"), path or "predictor", str(project_dir / path))
    interface = predictor_spec.get("interface", "class")
    module = _import_user_module(Path(where.source), where) if path else None
    defined = [shape for shape in INTERFACES if _defines(module, shape)]
    # Handlers are optional (a v0.9 API may serve a bare model), so a file defining none of the
    # three shapes is a "handlers" file.
    if interface not in defined and not (interface == "handlers" and not defined):
        found = defined[0] if defined else None
        raise where.error(_mismatch_message(interface, found, predictor_spec["type"]))
    if interface == "class":
        assert module is not None
        return _load_class(module, spec, project_dir, where)
    if interface == "functions":
        assert module is not None
        return _load_functions(module, spec, project_dir, where)
    if interface == "handler":
        assert module is not None
        return _load_handler(module, spec, project_dir, where)
    return _load_handlers(module, spec, project_dir, where)


# -- errors ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Where:
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


# -- importing ------------------------------------------------------------------------------------


def _import_user_module(file: Path, where: _Where) -> ModuleType:
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


# -- signatures -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Method:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()


def _class_methods(predictor_type: str) -> tuple[list[_Method], list[_Method]]:
    """(required, optional) methods of a predictor class, as Cortex validated them."""
    if predictor_type == "python":
        init = _Method("__init__", ("self", "config"), ("python_client",))
    else:
        init = _Method("__init__", ("self", CLIENT_ARGS[predictor_type], "config"))
    required = [init, _Method("predict", ("self",), REQUEST_ARGS)]
    optional = [_Method("post_predict", ("self",), POST_PREDICT_ARGS)]
    if predictor_type == "python":
        optional.append(_Method("load_model", ("self", "model_path")))
    return required, optional


def _arg_names(func: Callable[..., Any]) -> list[str]:
    return inspect.getfullargspec(func).args


def _check_method(cls: Any, method: _Method) -> list[str]:
    """The method's argument names (self included), or a PredictorError with Cortex's message."""
    owner = f"class {cls.__name__}"
    func = getattr(cls, method.name, None)
    if func is None:
        raise PredictorError(owner, f'required method "{method.name}" is not defined')
    if not callable(func):
        raise PredictorError(owner, f'"{method.name}" is defined, but is not a method')
    args = _arg_names(func)
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


def _has_own_init(cls: Any) -> bool:
    # A class without __init__ (Cortex's docs show some) is built with no arguments.
    return cls.__init__ is not object.__init__


def _injector(func: Callable[..., Any], offered: Sequence[str], wanted: Sequence[str]) -> Any:
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


def _no_post_predict(response: Any, payload: Any, query_params: Any, headers: Any) -> None:
    return None


# -- clients --------------------------------------------------------------------------------------


def _model_sources(spec: Mapping[str, Any], project_dir: Path, where: _Where) -> dict[str, Any]:
    try:
        return resolve_models(spec["predictor"].get("models"), project_dir)
    except ModelSourceError as error:
        raise where.error("predictor.models", str(error)) from error


def _cache_size(spec: Mapping[str, Any]) -> int | None:
    return (spec["predictor"].get("models") or {}).get("cache_size")


def _model_client(spec: Mapping[str, Any], project_dir: Path, where: _Where) -> Any:
    """The TensorFlow or ONNX client of the API's models, with the latest versions loaded (so a
    broken model fails at start, not on the first request)."""
    from .clients import ModelLoadError, intra_op_threads

    predictor_spec = spec["predictor"]
    predictor_type = predictor_spec["type"]
    sources = _model_sources(spec, project_dir, where)
    if not sources:
        raise where.error(
            f"predictor.models: a {predictor_type} predictor needs a model (predictor.models.path,"
            " paths or dir; `model` before v0.18)"
        )
    threads = intra_op_threads(
        int(predictor_spec.get("processes_per_replica") or 1),
        int(predictor_spec.get("threads_per_process") or 1),
    )
    gpu = int((spec.get("compute") or {}).get("gpu") or 0) > 0
    try:
        if predictor_type == "onnx":
            from .clients.onnx_client import ONNXClient

            client: Any = ONNXClient(
                sources, gpu=gpu, intra_op_threads=threads, cache_size=_cache_size(spec)
            )
        else:
            from .clients.tensorflow_client import TensorFlowClient, default_backend

            backend = default_backend(intra_op_threads=threads)
            client = TensorFlowClient(sources, backend, _cache_size(spec))
        client.load_latest()
    except (ModelLoadError, ModelSourceError) as error:  # a remote version may not fetch
        raise where.error("loading the model failed", str(error)) from error
    return client


# -- the three interfaces -------------------------------------------------------------------------


def _load_class(
    module: ModuleType, spec: Mapping[str, Any], project_dir: Path, where: _Where
) -> LoadedPredictor:
    predictor_spec = spec["predictor"]
    predictor_type = predictor_spec["type"]
    class_name = CLASS_NAMES[predictor_type]
    cls = getattr(module, class_name, None)
    if not inspect.isclass(cls):
        others = [n for n in CLASS_NAMES.values() if inspect.isclass(getattr(module, n, None))]
        raise where.error(
            f"{class_name} class is not defined (the file defines {', '.join(others)}; the "
            f'predictor type is "{predictor_type}")'
        )
    required, optional = _class_methods(predictor_type)
    try:
        arg_names = {}
        for method in required:
            if method.name == "__init__" and not _has_own_init(cls):
                arg_names[method.name] = ["self"]
                continue
            arg_names[method.name] = _check_method(cls, method)
        for method in optional:
            if getattr(cls, method.name, None) is not None:
                arg_names[method.name] = _check_method(cls, method)
    except PredictorError as error:
        raise where.error(*error.args) from None

    client: Any = None
    if predictor_type == "python":
        client = _python_client(cls, arg_names, spec, project_dir, where)
    elif CLIENT_ARGS[predictor_type] in arg_names["__init__"]:
        client = _model_client(spec, project_dir, where)

    available = {"config": predictor_spec.get("config") or {}, CLIENT_ARGS[predictor_type]: client}
    init_args = {name: available[name] for name in arg_names["__init__"][1:]}
    try:
        instance: Any = cls(**init_args)  # the user's class: its methods were checked above
    except Exception as error:
        raise where.failure(f"class {class_name}: __init__", error) from error

    if client is not None and predictor_type == "python":
        client.set_load_model(instance.load_model)

    post_predict = _no_post_predict
    if "post_predict" in arg_names:
        post_predict = _injector(
            instance.post_predict, POST_PREDICT_ARGS, arg_names["post_predict"][1:]
        )
    return LoadedPredictor(
        predict=_injector(instance.predict, REQUEST_ARGS, arg_names["predict"][1:]),
        post_predict=post_predict,
        is_async=inspect.iscoroutinefunction(instance.predict),
        has_post_predict="post_predict" in arg_names,
        interface="class",
        user_object=instance,
        client=client,
        predict_args=tuple(arg_names["predict"][1:]),
    )


def _python_client(
    cls: Any,
    arg_names: Mapping[str, list[str]],
    spec: Mapping[str, Any],
    project_dir: Path,
    where: _Where,
    client_arg: str = "python_client",
    section: str = "predictor",
) -> Any:
    """The python_client of `multi_model_reloading` (None without models), which then needs
    `client_arg` in __init__ and a load_model method. A Handler (v0.34-v0.35) names it
    `model_client`, under the config's `handler:` section."""
    sources = _model_sources(spec, project_dir, where)
    owner = f"class {cls.__name__}"
    wants_client = client_arg in arg_names["__init__"]
    configured = f"{section}.multi_model_reloading"
    if section == "predictor":
        configured += " (or models)"
    if not sources:
        if wants_client:
            raise where.error(
                owner,
                'invalid signature for method "__init__"',
                f'"{client_arg}" is only available when {section}.multi_model_reloading is'
                " configured",
            )
        return None
    if not wants_client:
        raise where.error(
            owner,
            'invalid signature for method "__init__"',
            f'"{client_arg}" is a required argument when {configured} is configured',
        )
    if "load_model" not in arg_names:
        raise where.error(
            owner,
            'required method "load_model" is not defined',
            f"it is required when {configured} is configured",
        )
    from .clients.python_client import PythonClient

    client = PythonClient(sources, _cache_size(spec))
    # As Cortex did, get_model works in the constructor too: until the instance exists,
    # load_model runs unbound (self=None).
    client.set_load_model(functools.partial(cls.load_model, None))
    return client


def _handler_methods(predictor_type: str) -> tuple[_Method, list[_Method]]:
    """(__init__, optional methods) of a Handler, after Cortex v0.34-v0.35's validation tables.

    Those tables named `config` as required, but Cortex never applied them (realtime.py passed
    the table keyed by protocol, where no "required" key is found) and passed `config` only to an
    __init__ that names it; `tensorflow_client` it passed always, so an __init__ without it failed.
    """
    if predictor_type == "python":
        init = _Method("__init__", ("self",), ("config", "model_client", "metrics_client"))
    else:
        init = _Method("__init__", ("self", "tensorflow_client"), ("config", "metrics_client"))
    optional = [_Method(name, ("self",), REQUEST_ARGS) for name in HANDLER_METHODS.values()]
    if predictor_type == "python":
        optional.append(_Method("load_model", ("self", "model_path")))
    return init, optional


def _load_handler(
    module: ModuleType, spec: Mapping[str, Any], project_dir: Path, where: _Where
) -> LoadedPredictor:
    predictor_spec = spec["predictor"]
    predictor_type = predictor_spec["type"]
    if predictor_type not in ("python", "tensorflow"):
        raise where.error(
            f"a {HANDLER_CLASS} class (Cortex v0.34-v0.35) has type python or tensorflow, not "
            f'"{predictor_type}"'
        )
    cls = getattr(module, HANDLER_CLASS)
    owner = f"class {HANDLER_CLASS}"
    init, optional = _handler_methods(predictor_type)
    try:
        arg_names = {"__init__": _check_method(cls, init) if _has_own_init(cls) else ["self"]}
        for method in optional:
            if getattr(cls, method.name, None) is not None:
                arg_names[method.name] = _check_method(cls, method)
    except PredictorError as error:
        raise where.error(*error.args) from None
    verbs = {verb: name for verb, name in HANDLER_METHODS.items() if name in arg_names}
    if not verbs:
        raise where.error(
            owner,
            'no "handle_<verb>" method is defined; define at least one of '
            + ", ".join(HANDLER_METHODS.values()),
        )
    if "metrics_client" in arg_names["__init__"]:
        # Cortex's client pushed custom metrics over UDP to the cluster's StatsD, which an image
        # does not have, and /metrics sums fixed counters in shared memory: nothing to record to.
        raise where.error(
            owner,
            f'invalid signature for method "__init__({", ".join(arg_names["__init__"])})"',
            '"metrics_client" is not supported: Cortex sent these custom metrics to its '
            "cluster's StatsD and Prometheus, which a standalone image does not have; remove the "
            "argument and its gauge/increment/histogram calls",
        )
    if (
        predictor_spec.get("server_side_batching")
        and predictor_type == "python"
        and "POST" not in verbs
    ):
        raise where.error(
            owner,
            "server_side_batching is configured, but no handle_post method is defined (only "
            "POST requests are batched)",
        )

    client: Any = None
    if predictor_type == "python":
        client = _python_client(
            cls, arg_names, spec, project_dir, where, client_arg="model_client", section="handler"
        )
    elif "tensorflow_client" in arg_names["__init__"]:
        client = _model_client(spec, project_dir, where)

    available = {
        "config": predictor_spec.get("config") or {},
        "model_client": client,
        "tensorflow_client": client,
    }
    init_args = {name: available[name] for name in arg_names["__init__"][1:]}
    try:
        instance = cls(**init_args)
    except Exception as error:
        raise where.failure(f"{owner}: __init__", error) from error
    if client is not None and predictor_type == "python":
        client.set_load_model(instance.load_model)

    methods = {
        verb: VerbMethod(
            call=_injector(getattr(instance, name), REQUEST_ARGS, arg_names[name][1:]),
            is_async=inspect.iscoroutinefunction(getattr(cls, name)),
            wants_payload="payload" in arg_names[name],
            args=tuple(arg_names[name][1:]),
        )
        for verb, name in verbs.items()
    }
    post = methods.get("POST")
    return LoadedPredictor(
        predict=post.call if post is not None else _no_handle_post,
        post_predict=_no_post_predict,
        is_async=post is not None and post.is_async,
        has_post_predict=False,
        interface="handler",
        user_object=instance,
        client=client,
        verbs=methods,
        predict_args=post.args if post is not None else (),
    )


def _no_handle_post(payload: Any, query_params: Any, headers: Any) -> None:
    # The server answers POST with 405 when the Handler has no handle_post; never called.
    raise RuntimeError(f"class {HANDLER_CLASS} defines no handle_post")


def _check_function(
    module: ModuleType, name: str, allowed: Sequence[tuple[str, ...]], where: _Where
) -> tuple[str, ...] | None:
    """The argument names of module function `name` (None when not defined), which must be one
    of `allowed`; Cortex's message otherwise."""
    func = getattr(module, name, None)
    if func is None:
        return None
    if not callable(func):
        raise where.error(f'"{name}" is defined, but is not a function')
    args = tuple(_arg_names(func))
    if args not in allowed:
        expected = " or ".join(f"({', '.join(option)})" for option in allowed)
        raise where.error(
            f'invalid signature for function "{name}"',
            f"expected arguments {expected} but found ({', '.join(args)})",
        )
    return args


def _load_functions(
    module: ModuleType, spec: Mapping[str, Any], project_dir: Path, where: _Where
) -> LoadedPredictor:
    metadata = spec["predictor"].get("config") or {}
    _check_function(module, "predict", [("sample", "metadata")], where)
    init_args = _check_function(module, "init", [("metadata",), ("model_path", "metadata")], where)
    if init_args is not None:
        values: dict[str, Any] = {"metadata": metadata}
        if "model_path" in init_args:
            values["model_path"] = _single_model_path(spec, project_dir, where)
        try:
            module.init(*[values[name] for name in init_args])
        except Exception as error:
            raise where.failure("init", error) from error

    return LoadedPredictor(
        predict=_injector(
            functools.partial(module.predict, metadata=metadata), REQUEST_ARGS, ("payload",)
        ),
        post_predict=_no_post_predict,
        is_async=inspect.iscoroutinefunction(module.predict),
        has_post_predict=False,
        interface="functions",
        user_object=module,
        predict_args=("payload",),
    )


def _single_model_path(spec: Mapping[str, Any], project_dir: Path, where: _Where) -> str | None:
    """`model_path` of init(model_path, metadata): the local path of `model`, or None."""
    models = spec["predictor"].get("models") or {}
    paths = models.get("paths") or ()
    if not paths:
        return None
    try:
        return str(resolve_local_path(paths[0]["path"], project_dir, "predictor.model"))
    except ModelSourceError as error:
        raise where.error(str(error)) from error


def _handler(module: ModuleType | None, name: str, where: _Where) -> tuple[Any, bool]:
    """(function or None, whether it takes the signature): 2 arguments (value, metadata) or 3
    (value, signature, metadata), whatever their names."""
    func = getattr(module, name, None) if module is not None else None
    if func is None:
        return None, False
    if not callable(func):
        raise where.error(f'"{name}" is defined, but is not a function')
    args = _arg_names(func)
    if len(args) not in (2, 3):
        first = "sample" if name == "pre_inference" else "prediction"
        raise where.error(
            f'invalid signature for function "{name}({", ".join(args)})"',
            f"expected arguments ({first}, metadata) or ({first}, signature, metadata)",
        )
    return func, len(args) == 3


def _load_handlers(
    module: ModuleType | None, spec: Mapping[str, Any], project_dir: Path, where: _Where
) -> LoadedPredictor:
    predictor_spec = spec["predictor"]
    if predictor_spec["type"] not in ("tensorflow", "onnx"):
        raise where.error(
            "pre_inference/post_inference request handlers need a tensorflow or onnx model"
        )
    metadata = predictor_spec.get("config") or {}
    pre_inference, pre_wants_signature = _handler(module, "pre_inference", where)
    post_inference, post_wants_signature = _handler(module, "post_inference", where)
    client = _model_client(spec, project_dir, where)
    # What Cortex passed as the model's metadata (`signature` of the 3-argument form; v0.9's
    # 2-argument `metadata`): TensorFlow: {input: {"shape", "type"}} for both handlers; ONNX: the
    # session's input metadata to pre_inference and output metadata to post_inference.
    if predictor_spec["type"] == "onnx":
        pre_signature = client.input_metadata()
        post_signature = client.output_metadata()
    else:
        pre_signature = post_signature = client.input_signature()
    if (spec.get("cortex") or {}).get("handler_metadata") == "model":
        # v0.9: the second of two arguments was the model's metadata, not predictor.config
        pre_config, post_config = pre_signature, post_signature
    else:
        pre_config = post_config = metadata

    def predict(payload: Any, query_params: Any, headers: Any) -> Any:
        sample = payload
        if pre_inference is not None:
            if pre_wants_signature:
                sample = pre_inference(sample, pre_signature, metadata)
            else:
                sample = pre_inference(sample, pre_config)
        prediction = client.predict(sample, None, LATEST)
        if post_inference is not None:
            if post_wants_signature:
                return post_inference(prediction, post_signature, metadata)
            return post_inference(prediction, post_config)
        return prediction

    return LoadedPredictor(
        predict=predict,
        post_predict=_no_post_predict,
        is_async=False,
        has_post_predict=False,
        interface="handlers",
        user_object=module,
        client=client,
        predict_args=("payload",),
    )
