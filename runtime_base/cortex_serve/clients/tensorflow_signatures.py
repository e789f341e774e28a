"""What both TensorFlow backends share: the backend interface, and choosing and checking a
SavedModel signature as Cortex did (see tensorflow_client.py for the contract)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..model_sources import ModelSource
from . import ModelInputError, ModelLoadError

PREFERRED_SIGNATURES = ("predict", "serving_default")
INTERNAL_SIGNATURE_PREFIX = "__"  # "__saved_model_init_op", which GetModelMetadata also lists

Dims = list[int | None] | None  # a shape: None for an unknown dimension; None for unknown rank


def choose_signature(available: Sequence[str], signature_key: str | None, what: str) -> str:
    """The signature Cortex would use; ModelLoadError naming the available keys otherwise."""
    keys = ", ".join(f'"{k}"' for k in sorted(available)) or "none"
    if signature_key is not None:
        if signature_key not in available:
            raise ModelLoadError(
                f'{what}: signature_key "{signature_key}" is not a signature of the model '
                f"(available: {keys})"
            )
        return signature_key
    if len(available) == 1:
        return available[0]
    for preferred in PREFERRED_SIGNATURES:
        if preferred in available:
            return preferred
    if not available:
        raise ModelLoadError(f"{what}: the SavedModel has no signatures")
    raise ModelLoadError(
        f"{what}: the model has several signatures and none is configured; set "
        f"signature_key to one of {keys}"
    )


def batch_dims_to_add(expected: Dims, actual: Sequence[int]) -> int | None:
    """0 when a value of shape `actual` fits `expected`, 1 when it fits once given the leading
    batch dimension Cortex users leave out for one sample, None when it does not fit."""

    def fits(dims: Sequence[int | None], shape: Sequence[int]) -> bool:
        if len(dims) != len(shape):
            return False
        return all(d is None or d == s for d, s in zip(dims, shape, strict=True))

    if expected is None or fits(expected, actual):
        return 0
    if expected and expected[0] is None and fits(expected[1:], actual):
        return 1
    return None


def shape_text(dims: Dims) -> str:
    if dims is None:
        return "(any)"
    return "[" + ", ".join("None" if d is None else str(d) for d in dims) + "]"


def input_mismatch(name: str, dims: Dims, dtype_name: str, problem: str) -> ModelInputError:
    return ModelInputError(
        f'input "{name}": expected shape {shape_text(dims)} ({dtype_name}), {problem}'
    )


class TensorFlowBackend(Protocol):
    """Where a SavedModel's signature runs: in this process, or in a TF Serving sidecar."""

    def configure(self, sources: Mapping[str, ModelSource]) -> None:
        """Called once with every model the API serves, before any load."""

    def load(self, source: ModelSource, version: int) -> Any:
        """Prepares one model version's signature; ModelLoadError if it cannot."""

    def input_signature(self, loaded: Any) -> dict[str, dict[str, Any]]:
        """{input name: {"shape": [dims, -1 when unknown], "type": dtype name}}."""

    def run(self, loaded: Any, model_input: Mapping[str, Any]) -> dict[str, list[Any]]:
        """{output name: flat list of values}; ModelInputError when the input does not fit."""


def model_label(source: ModelSource, version: int) -> str:
    return f'model "{source.name}" version {version}'


def signature_for_display(inputs: Mapping[str, tuple[Dims, str]]) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "shape": None if dims is None else [-1 if d is None else d for d in dims],
            "type": dtype_name,
        }
        for name, (dims, dtype_name) in inputs.items()
    }


def flat_list(array: Any) -> list[Any]:
    values = array.ravel().tolist()
    if values and isinstance(values[0], bytes):
        return [v.decode("utf-8", errors="replace") for v in values]
    return values
