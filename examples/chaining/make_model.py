"""Remakes model/iris.json: a logistic regression fit on scikit-learn's iris data
(deterministic)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from iris_training import (
    example_dir,
    logistic_regression_json,
    train_logistic_regression,
    write_json,
)

if __name__ == "__main__":
    write_json(
        example_dir(__file__) / "model" / "iris.json",
        logistic_regression_json(train_logistic_regression()),
    )
