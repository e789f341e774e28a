"""Remakes model/1/model.onnx (version 1 of the model): a logistic regression fit on
scikit-learn's iris data, converted with skl2onnx (deterministic)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from iris_training import example_dir, train_logistic_regression, write_onnx

if __name__ == "__main__":
    write_onnx(example_dir(__file__) / "model" / "1" / "model.onnx", train_logistic_regression())
