"""`python_client`: the models of `predictor.multi_model_reloading`, loaded by the predictor's own
`load_model(model_path)` on first use.

`model_path` is a local path: a remote (s3) version is fetched into the cache folder first and
kept there while load_model runs. Without `cache_size`, new and removed version folders are
followed without a restart (see ../models.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..model_sources import LATEST, ModelSource
from ..models import ModelStore


class PythonClient:
    """What Cortex passed as `python_client` to `PythonPredictor.__init__`."""

    def __init__(self, sources: Mapping[str, ModelSource], cache_size: int | None = None) -> None:
        self._store: ModelStore[Any] = ModelStore(sources, cache_size=cache_size, live_reload=True)

    def set_load_model(self, load_model: Callable[[str], Any]) -> None:
        """How models are loaded from now on: the predictor's load_model(model_path)."""

        def load(source: ModelSource, version: int) -> Any:
            with source.local(version) as path:
                return load_model(str(path))

        self._store.set_loader(load)

    def close(self) -> None:
        """Stops following the model sources (live reload)."""
        self._store.close()

    def get_model(self, model_name: str | None = None, model_version: str | int = LATEST) -> Any:
        """The object `load_model` returned for this model version, loading it on first use.

        `model_name` may be left out when the API serves one model; `model_version` is
        "latest" (the highest version) or a version number (int or numeric string).
        Raises ModelNotFoundError (a LookupError) for a name or version the API does not serve.
        """
        return self._store.get(model_name, model_version)
