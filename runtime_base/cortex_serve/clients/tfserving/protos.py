"""TF Serving's message classes, built with google.protobuf alone from _descriptors.py.

They live in a private DescriptorPool: a predictor that also imports tensorflow (for its own
preprocessing) registers the same proto files, possibly of another version, in the default pool,
and the two must not clash.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pool

from . import _descriptors


@dataclass(frozen=True)
class Method:
    path: str  # "/tensorflow.serving.PredictionService/Predict"
    request: Any  # message class
    response: Any


class Protos:
    """Message classes by full name (`protos.message("tensorflow.TensorProto")`), enums by value
    name, and the four gRPC methods the backend calls."""

    def __init__(self) -> None:
        self.pool = descriptor_pool.DescriptorPool()
        self._classes: dict[str, Any] = {}
        for name, encoded in _descriptors.FILES:
            self.pool.AddSerializedFile(base64.b64decode(encoded))
            # Every class made now and held here: upb in protobuf 4.22-4.24 holds the classes
            # of a private pool's sub-messages weakly, and one made on the fly and freed again
            # crashed the process.
            for descriptor in self.pool.FindFileByName(name).message_types_by_name.values():
                self._add_classes(descriptor)
        self.methods = {
            name: Method(path, self.message(request), self.message(response))
            for name, (path, request, response) in _descriptors.METHODS.items()
        }

    def _add_classes(self, descriptor: Any) -> None:
        self._classes[descriptor.full_name] = _message_class(descriptor)
        for nested in descriptor.nested_types:
            self._add_classes(nested)

    def message(self, full_name: str) -> Any:
        return self._classes[full_name]  # every class is made in __init__, never on the fly

    def enum_value(self, enum_full_name: str, value_name: str) -> int:
        return self.pool.FindEnumTypeByName(enum_full_name).values_by_name[value_name].number

    def enum_name(self, enum_full_name: str, number: int) -> str:
        value = self.pool.FindEnumTypeByName(enum_full_name).values_by_number.get(number)
        return value.name if value is not None else str(number)


def _message_class(descriptor: Any) -> Any:
    from google.protobuf import message_factory

    get_message_class = getattr(message_factory, "GetMessageClass", None)
    if get_message_class is not None:  # protobuf >= 4.22
        return get_message_class(descriptor)
    return message_factory.MessageFactory(descriptor.file.pool).GetPrototype(descriptor)


@functools.cache
def protos() -> Protos:
    """The one Protos of this process (built on first use: a few milliseconds)."""
    return Protos()
