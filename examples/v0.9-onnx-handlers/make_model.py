"""Remakes model.onnx: a logistic regression fit on scikit-learn's iris data, converted with
skl2onnx (input "input" float32 [None, 4]; outputs "label" and "probabilities")."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from iris_training import example_dir, train_logistic_regression, write_onnx

if __name__ == "__main__":
    write_onnx(example_dir(__file__) / "model.onnx", train_logistic_regression())
