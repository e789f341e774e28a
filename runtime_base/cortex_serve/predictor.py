"""What the server calls on a user's predictor, whatever its generation: `Predictor`.

`predictor_loading.load_predictor(spec, project_dir)` returns one; every difference between
generations (classes vs module functions vs pre/post_inference handlers, constructor arguments
injected by name, which arguments `predict` names) is absorbed behind it by the loaders:
`predictor_classes.py` (a predictor class, v0.12 and later; a Handler, v0.34-v0.35) and
`predictor_modules.py` (module functions, v0.9-v0.11; request handlers, v0.9).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

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


def no_post_predict(response: Any, payload: Any, query_params: Any, headers: Any) -> None:
    return None
