"""Loading a user's predictor, whatever its generation, behind one small interface.

The server (app.py) only ever calls `load_predictor(spec, project_dir)` and then the methods of the
returned `Predictor`; every difference between generations (classes vs module functions vs
pre/post_inference handlers, constructor arguments injected by name, which arguments `predict`
names) is absorbed here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class Predictor(Protocol):
    is_async: bool  # True when the user's predict is `async def` (runs on the event loop)
    has_post_predict: bool

    def predict(self, payload: Any, query_params: dict[str, str], headers: dict[str, str]) -> Any:
        """Calls the user's predict with only the arguments it names (awaitable if is_async)."""

    def post_predict(
        self, response: Any, payload: Any, query_params: dict[str, str], headers: dict[str, str]
    ) -> None:
        """Calls the user's post_predict (if any) with only the arguments it names."""


def load_predictor(spec: dict[str, Any], project_dir: Path) -> Predictor:
    """Imports the predictor file of `spec` (api.json as a dict) and initialises it.

    Raises PredictorError with a Cortex-like message on a bad signature or a failing init.
    """
    raise NotImplementedError


class PredictorError(Exception):
    """The user's predictor cannot be loaded or initialised; the message is shown as it is."""
