"""Remakes model/iris.json (a logistic regression fit on scikit-learn's iris data, deterministic)
and items.ndjson (the 150 iris samples as the job's items, one JSON object a line)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from iris_training import (
    example_dir,
    iris_data,
    logistic_regression_json,
    train_logistic_regression,
    write_json,
)

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")

if __name__ == "__main__":
    here = example_dir(__file__)
    write_json(here / "model" / "iris.json", logistic_regression_json(train_logistic_regression()))
    features, _ = iris_data()
    with open(here / "items.ndjson", "w") as items:
        for row in features:
            items.write(json.dumps({name: round(float(v), 2) for name, v in zip(FEATURES, row)}))
            items.write("\n")
