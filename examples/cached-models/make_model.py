"""Remakes the five model versions as JSON linear models (deterministic):
- models/logistic/1: logistic regression, strongly regularized (C=0.01)
- models/logistic/2: logistic regression (C=1.0)
- models/centroid/1: nearest centroid on all four features
- models/centroid/2: nearest centroid on the petal features only
- models/petal: nearest centroid on the petal length only, unversioned (version 1)
Version 1 of logistic and centroid calls the versicolor sample (7.0, 3.2, 4.7, 1.4) virginica;
version 2 gets it right, which samples.yaml shows."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from iris_training import (
    example_dir,
    logistic_regression_json,
    nearest_centroid_json,
    train_logistic_regression,
    write_json,
)

if __name__ == "__main__":
    models = example_dir(__file__) / "models"
    write_json(
        models / "logistic" / "1" / "model.json",
        logistic_regression_json(train_logistic_regression(c=0.01)),
    )
    write_json(
        models / "logistic" / "2" / "model.json",
        logistic_regression_json(train_logistic_regression(c=1.0)),
    )
    write_json(models / "centroid" / "1" / "model.json", nearest_centroid_json())
    write_json(models / "centroid" / "2" / "model.json", nearest_centroid_json((2, 3)))
    write_json(models / "petal" / "model.json", nearest_centroid_json((2,)))
