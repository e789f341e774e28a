"""`tensorflow_client`: predictions from a SavedModel behind Cortex's TensorFlowClient interface.

The model-facing part is a backend (`TensorFlowBackend`, tensorflow_signatures.py), chosen by
`default_backend`:
- `GrpcBackend` (tfserving/grpc_backend.py) when CORTEX_TF_SERVING_ADDRESS is set (host:port
  of a TensorFlow Serving sidecar, as in Cortex): the models are loaded into TF Serving through
  ModelService's HandleReloadConfigRequest, their signatures read with GetModelMetadata and run
  with Predict. It needs only grpcio, protobuf and numpy (TF Serving's message types are
  vendored, see tfserving/). Settings: CORTEX_TF_SERVING_MODEL_DIR (where the sidecar sees the
  models, default /mnt/model), CORTEX_TF_SERVING_START_TIMEOUT (seconds to reach the sidecar,
  120), CORTEX_TF_SERVING_LOAD_TIMEOUT (seconds for a model to become AVAILABLE, 600),
  CORTEX_TF_SERVING_PREDICT_TIMEOUT (seconds a Predict call may take, 60; 0: no deadline),
  CORTEX_TF_SERVING_MAX_MESSAGE_BYTES (gRPC message limit, default 2**31 - 1).
- `InProcessBackend` (tensorflow_in_process.py) otherwise (tf.saved_model.load in the worker;
  `cortex-build serve`).

Contract kept from Cortex:
- `predict(model_input, model_name=None, model_version="latest")`: `model_input` is a dict keyed
  by the signature's input names (a single-input signature also takes the value itself); each
  value is converted to the input's dtype, and a value that lacks only the leading batch
  dimension gets it (one sample for a [None, ...] input).
- It returns {output name: flat list of values}, as Cortex flattened TF Serving's response
  (`prediction["class_ids"][0]`); strings come back as str.
- The signature is `signature_key` if configured, else the model's only one, else "predict",
  else "serving_default", else an error listing the available keys (TF Serving's internal
  "__saved_model_init_op" is not a choice).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..model_sources import LATEST, ModelSource
from ..models import ModelStore
from . import ModelInputError
from .tensorflow_in_process import InProcessBackend
from .tensorflow_signatures import (
    TensorFlowBackend,
)
from .tfserving.grpc_backend import TF_SERVING_ADDRESS_ENV, GrpcBackend


def default_backend(intra_op_threads: int | None = None) -> TensorFlowBackend:
    """The TF Serving sidecar named by CORTEX_TF_SERVING_ADDRESS, else TensorFlow in process."""
    address = os.environ.get(TF_SERVING_ADDRESS_ENV)
    if address:
        return GrpcBackend.from_env(address)
    return InProcessBackend(intra_op_threads)


class TensorFlowClient:
    """What Cortex passed as `tensorflow_client` to `TensorFlowPredictor.__init__`."""

    def __init__(
        self,
        sources: Mapping[str, ModelSource],
        backend: TensorFlowBackend,
        cache_size: int | None = None,
    ) -> None:
        self._backend = backend
        backend.configure(sources)
        self._models: ModelStore[Any] = ModelStore(sources, backend.load, cache_size)

    def load_latest(self) -> None:
        """Loads the latest version of every model now."""
        self._models.load_latest()

    def input_signature(
        self, model_name: str | None = None, model_version: str | int = LATEST
    ) -> dict[str, dict[str, Any]]:
        """{input name: {"shape": [...], "type": "float32"}} of the model's signature (what v0.9
        passed to pre_inference/post_inference as `signature`)."""
        return self._backend.input_signature(self._models.get(model_name, model_version))

    def predict(
        self, model_input: Any, model_name: str | None = None, model_version: str | int = LATEST
    ) -> dict[str, list[Any]]:
        """Runs the signature; returns {output name: flat list of values}.

        Raises ModelInputError (a ValueError) for missing or unknown input keys and values that
        do not fit, ModelNotFoundError (a LookupError) for an unknown model name or version.
        """
        loaded = self._models.get(model_name, model_version)
        signature = self._backend.input_signature(loaded)
        names = list(signature)
        if not isinstance(model_input, Mapping):
            if len(names) != 1:
                raise ModelInputError(
                    "expected a dict keyed by the signature's input names ("
                    + ", ".join(f'"{n}"' for n in names)
                    + f"), got {type(model_input).__name__}"
                )
            model_input = {names[0]: model_input}
        missing = [n for n in names if n not in model_input]
        unknown = [k for k in model_input if k not in signature]
        if missing or unknown:
            problems = []
            if missing:
                problems.append("missing key(s) " + ", ".join(f'"{n}"' for n in missing))
            if unknown:
                problems.append("unknown key(s) " + ", ".join(f'"{k}"' for k in unknown))
            raise ModelInputError(
                "; ".join(problems) + f" (the signature's inputs: {', '.join(names)})"
            )
        return self._backend.run(loaded, model_input)
