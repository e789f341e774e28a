"""numpy arrays <-> tensorflow.TensorProto, without tensorflow (what tf.make_tensor_proto and
tf.make_ndarray do for the dtypes a SavedModel signature takes in practice).

Numbers travel as little-endian `tensor_content` bytes, strings as `string_val`; reading also
accepts the typed value fields (`float_val`, `int64_val`, ...) that other writers use, with TF's
rule that a single value fills the whole shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DATA_TYPE = "tensorflow.DataType"


@dataclass(frozen=True)
class DType:
    enum_name: str  # tensorflow.DataType value name
    name: str  # TensorFlow's dtype name, as error messages and input_signature show it
    numpy: Any  # numpy dtype (little-endian); object for strings
    value_field: str  # TensorProto's typed field for this dtype


DTYPES = (
    DType("DT_FLOAT", "float32", np.dtype("<f4"), "float_val"),
    DType("DT_DOUBLE", "float64", np.dtype("<f8"), "double_val"),
    DType("DT_HALF", "float16", np.dtype("<f2"), "half_val"),
    DType("DT_INT8", "int8", np.dtype("i1"), "int_val"),
    DType("DT_INT16", "int16", np.dtype("<i2"), "int_val"),
    DType("DT_INT32", "int32", np.dtype("<i4"), "int_val"),
    DType("DT_INT64", "int64", np.dtype("<i8"), "int64_val"),
    DType("DT_UINT8", "uint8", np.dtype("u1"), "int_val"),
    DType("DT_UINT16", "uint16", np.dtype("<u2"), "int_val"),
    DType("DT_UINT32", "uint32", np.dtype("<u4"), "uint32_val"),
    DType("DT_UINT64", "uint64", np.dtype("<u8"), "uint64_val"),
    DType("DT_BOOL", "bool", np.dtype("?"), "bool_val"),
    DType("DT_COMPLEX64", "complex64", np.dtype("<c8"), "scomplex_val"),
    DType("DT_COMPLEX128", "complex128", np.dtype("<c16"), "dcomplex_val"),
    DType("DT_STRING", "string", np.dtype(object), "string_val"),
)


class UnsupportedDType(ValueError):
    pass


class TensorCodec:
    """Converts with the TensorProto class and DataType numbers of one Protos."""

    def __init__(self, protos: Any) -> None:
        self.tensor_proto = protos.message("tensorflow.TensorProto")
        self._protos = protos
        self._by_number = {protos.enum_value(DATA_TYPE, dtype.enum_name): dtype for dtype in DTYPES}
        self._numbers = {dtype.enum_name: number for number, dtype in self._by_number.items()}

    def dtype(self, number: int) -> DType:
        try:
            return self._by_number[number]
        except KeyError:
            name = self._protos.enum_name(DATA_TYPE, number)
            raise UnsupportedDType(f"tensors of type {name} are not supported") from None

    def to_proto(self, array: np.ndarray, dtype: DType, proto: Any = None) -> Any:
        """Fills `proto` (a new TensorProto by default) with `array`, which already has
        `dtype.numpy` (object arrays of bytes for strings)."""
        proto = self.tensor_proto() if proto is None else proto
        proto.dtype = self._numbers[dtype.enum_name]
        for size in array.shape:
            proto.tensor_shape.dim.add().size = size
        if dtype.enum_name == "DT_STRING":
            proto.string_val.extend(array.ravel().tolist())
        else:
            proto.tensor_content = np.ascontiguousarray(array, dtype=dtype.numpy).tobytes()
        return proto

    def to_array(self, proto: Any) -> np.ndarray:
        dtype = self.dtype(proto.dtype)
        shape = tuple(dim.size for dim in proto.tensor_shape.dim)
        count = int(np.prod(shape, dtype=np.int64))
        if proto.tensor_content:
            return np.frombuffer(proto.tensor_content, dtype=dtype.numpy).reshape(shape).copy()
        values: Sequence[Any] = getattr(proto, dtype.value_field)
        if dtype.enum_name == "DT_STRING":
            array = np.empty(len(values), dtype=object)
            array[:] = list(values)
        elif dtype.enum_name == "DT_HALF":  # half_val holds the 16-bit patterns
            array = np.array(values, dtype=np.uint16).view(np.float16)
        elif dtype.enum_name in ("DT_COMPLEX64", "DT_COMPLEX128"):  # (real, imaginary) pairs
            pairs = np.array(values, dtype=np.float64).reshape(-1, 2)
            array = (pairs[:, 0] + 1j * pairs[:, 1]).astype(dtype.numpy)
        else:
            array = np.array(values, dtype=dtype.numpy)
        if array.size == count:
            return array.reshape(shape)
        if array.size == 0:  # TF's default: zeros (empty strings)
            return np.full(shape, b"" if dtype.enum_name == "DT_STRING" else 0, dtype=dtype.numpy)
        if array.size < count:  # TF's rule: the last value fills the rest
            filled = np.empty(count, dtype=dtype.numpy)
            filled[: array.size] = array
            filled[array.size :] = array[-1]
            return filled.reshape(shape)
        raise ValueError(f"a TensorProto of shape {list(shape)} holds {array.size} values")


def convert(value: Any, dtype: DType) -> np.ndarray:
    """`value` (nested lists, numbers, strings, an ndarray) as an array of `dtype`; ValueError
    with the reason when it does not convert the way tf.convert_to_tensor would (no silent
    float -> int truncation, no parsing of strings as numbers)."""
    if dtype.enum_name == "DT_STRING":
        raw = np.asarray(value, dtype=object)
        flat = raw.ravel()
        for i, item in enumerate(flat):
            if isinstance(item, str):
                flat[i] = item.encode("utf-8")
            elif not isinstance(item, bytes):
                raise ValueError(f"expected strings, got {type(item).__name__}")
        return flat.reshape(raw.shape)
    raw = np.asarray(value)
    if raw.dtype.kind in "USO":
        raise ValueError(f"expected numbers, got {_kind_name(raw)}")
    wanted = dtype.numpy.kind
    if wanted == "b" and raw.dtype.kind != "b":
        raise ValueError(f"expected booleans, got {_kind_name(raw)}")
    if wanted in "iu" and raw.dtype.kind in "fc":
        raise ValueError(f"expected integers, got {_kind_name(raw)}")
    if wanted in "iu" and raw.dtype.kind in "iu" and raw.size:
        limits = np.iinfo(dtype.numpy)
        if raw.min() < limits.min or raw.max() > limits.max:
            raise ValueError(f"values out of the range of {dtype.name}")
    if wanted == "f" and raw.dtype.kind == "c":
        raise ValueError("expected real numbers, got complex numbers")
    try:
        return raw.astype(dtype.numpy, casting="unsafe")
    except (TypeError, ValueError) as error:
        raise ValueError(str(error)) from None


def _kind_name(array: np.ndarray) -> str:
    return {
        "U": "strings",
        "S": "bytes",
        "O": "mixed or nested values of different lengths",
        "f": "floating-point numbers",
        "c": "complex numbers",
        "i": "integers",
        "u": "integers",
        "b": "booleans",
    }.get(array.dtype.kind, str(array.dtype))
