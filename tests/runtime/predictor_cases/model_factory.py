"""Real models for the predictor tests, made from data that ships with scikit-learn (iris)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

IRIS_LABELS = ["setosa", "versicolor", "virginica"]
SETOSA = [5.1, 3.5, 1.4, 0.2]  # the first iris sample: class 0
VIRGINICA = [6.3, 3.3, 6.0, 2.5]  # sample 100: class 2


def iris_classifier() -> LogisticRegression:
    data = load_iris()
    return LogisticRegression(max_iter=500).fit(data.data, data.target)


def write_iris_onnx(path: Path) -> Path:
    """A scikit-learn iris classifier as ONNX: input "float_input" [None, 4], outputs
    "output_label" (int64 [None]) and "output_probability" (a ZipMap: a list of dicts)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    initial_types = [("float_input", FloatTensorType([None, 4]))]
    onnx_model = convert_sklearn(iris_classifier(), initial_types=initial_types)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(onnx_model.SerializeToString())
    return path


def write_two_input_onnx(path: Path, scale: float = 1.0) -> Path:
    """`sum = (a + b) * scale` with inputs "a" (float [None, 2]) and "b" (int64 [None, 2], cast)."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["b"], ["b_float"], to=TensorProto.FLOAT),
            helper.make_node("Add", ["a", "b_float"], ["added"]),
            helper.make_node("Mul", ["added", "scale"], ["sum"]),
        ],
        "two_inputs",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [None, 2]),
            helper.make_tensor_value_info("b", TensorProto.INT64, [None, 2]),
        ],
        [helper.make_tensor_value_info("sum", TensorProto.FLOAT, [None, 2])],
        initializer=[helper.make_tensor("scale", TensorProto.FLOAT, [], [scale])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by any onnxruntime >= 1.10
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


def write_iris_savedmodel(path: Path, signatures: tuple[str, ...] = ("serving_default",)) -> Path:
    """The iris classifier's weights in a tf.Module SavedModel. Every signature in `signatures`
    takes "features" (float32 [None, 4]) and returns "class_ids" (int64 [None]),
    "probabilities" (float32 [None, 3]) and "label" (string [None]); a signature named
    "scaled" instead takes two inputs, "features" and "factor" (float32 scalar)."""
    import tensorflow as tf

    classifier = iris_classifier()

    class IrisModule(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.kernel = tf.Variable(classifier.coef_.T.astype(np.float32))
            self.bias = tf.Variable(classifier.intercept_.astype(np.float32))
            self.labels = tf.constant(IRIS_LABELS)

        def _classify(self, features: tf.Tensor) -> dict[str, tf.Tensor]:
            probabilities = tf.nn.softmax(tf.matmul(features, self.kernel) + self.bias)
            class_ids = tf.argmax(probabilities, axis=1)
            return {
                "class_ids": class_ids,
                "probabilities": probabilities,
                "label": tf.gather(self.labels, class_ids),
            }

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features")])
        def classify(self, features: tf.Tensor) -> dict[str, tf.Tensor]:
            return self._classify(features)

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 4], tf.float32, name="features"),
                tf.TensorSpec([], tf.float32, name="factor"),
            ]
        )
        def scaled(self, features: tf.Tensor, factor: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"scaled": features * factor}

    module = IrisModule()
    functions = {
        name: module.scaled if name == "scaled" else module.classify for name in signatures
    }
    tf.saved_model.save(module, str(path), signatures=functions)
    return path
