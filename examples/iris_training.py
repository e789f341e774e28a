"""The small iris models the examples serve, made the same way every time.

Each example's `make_model.py` imports this file (it lives beside the example folders, outside
every Cortex project, so it never ends up in an image). Everything here is deterministic:
scikit-learn's bundled iris data, lbfgs logistic regression (no random state involved), and
models written as JSON (sorted keys) or ONNX.

The JSON "linear model" format that the Python predictors read:
    {"features": [4 names], "labels": [3 names], "coef": [[4 floats] x 3], "intercept": [3]}
The class is the argmax of coef . x + intercept; for a logistic regression, the softmax of those
scores gives its probabilities.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
LABELS = ("setosa", "versicolor", "virginica")


def iris_data(feature_indexes: Sequence[int] = (0, 1, 2, 3)) -> tuple[Any, Any]:
    """(X, y) of the 150 iris samples, with only the given feature columns."""
    iris = load_iris()
    return iris.data[:, list(feature_indexes)], iris.target


def train_logistic_regression(c: float = 1.0) -> LogisticRegression:
    x, y = iris_data()
    return LogisticRegression(C=c, max_iter=1000).fit(x, y)


def logistic_regression_json(model: LogisticRegression) -> dict[str, Any]:
    return {
        "kind": "logistic_regression",
        "features": list(FEATURES),
        "labels": list(LABELS),
        "coef": model.coef_.tolist(),
        "intercept": model.intercept_.tolist(),
    }


def nearest_centroid_json(feature_indexes: Sequence[int] = (0, 1, 2, 3)) -> dict[str, Any]:
    """Nearest centroid as a linear model: argmin |x - c|^2 = argmax 2 c.x - |c|^2. Features left
    out get weight 0 (and centroid 0), so the model still takes all four."""
    x, y = iris_data()
    mask = [1.0 if i in feature_indexes else 0.0 for i in range(len(FEATURES))]
    centroids = [x[y == k].mean(axis=0) * mask for k in range(len(LABELS))]
    return {
        "kind": "nearest_centroid",
        "features": list(FEATURES),
        "labels": list(LABELS),
        "coef": [(2 * c).tolist() for c in centroids],
        "intercept": [float(-(c @ c)) for c in centroids],
    }


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def write_onnx(path: Path, model: LogisticRegression) -> None:
    """The model as ONNX: input "input" float32 [None, 4]; outputs "label" int64 [None] and
    "probabilities" float32 [None, 3] (no ZipMap, so both are plain tensors)."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    onnx_model = to_onnx(
        model,
        initial_types=[("input", FloatTensorType([None, len(FEATURES)]))],
        options={id(model): {"zipmap": False}},
        target_opset=15,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(onnx_model.SerializeToString())
    print(f"wrote {path}")


def write_csv(path: Path) -> None:
    """The training data as CSV (what a user would keep beside a notebook)."""
    x, y = iris_data()
    lines = [",".join((*FEATURES, "species"))]
    lines += [",".join([*(f"{v:.1f}" for v in row), LABELS[k]]) for row, k in zip(x, y)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def example_dir(make_model_file: str) -> Path:
    """The example folder of a make_model.py (so it can be run from anywhere)."""
    return Path(make_model_file).resolve().parent
