"""Remakes model/iris.json (a logistic regression fit on scikit-learn's iris data, deterministic)
and data/iris.csv (the training data, kept out of the image by .cortexignore)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from iris_training import (
    example_dir,
    logistic_regression_json,
    train_logistic_regression,
    write_csv,
    write_json,
)

if __name__ == "__main__":
    here = example_dir(__file__)
    write_json(here / "model" / "iris.json", logistic_regression_json(train_logistic_regression()))
    write_csv(here / "data" / "iris.csv")
