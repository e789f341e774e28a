"""Remakes model/: a TensorFlow SavedModel of a logistic regression fit on scikit-learn's iris
data, with the weights copied into tf.Variables (so it is deterministic and a few KB).

Its one signature, "predict", takes the four features as separate float32 inputs of shape
[batch] (as the estimator-exported iris models of Cortex's examples did) and returns
"class_ids" int64 [batch, 1] and "probabilities" float32 [batch, 3].
"""

import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import tensorflow as tf

from iris_training import FEATURES, example_dir, train_logistic_regression


class IrisLogisticRegression(tf.Module):
    def __init__(self, coef, intercept):
        super().__init__()
        # sklearn's coef_ is [classes, features]; the matmul wants [features, classes]
        self.weights = tf.Variable(tf.constant(coef.T, dtype=tf.float32), name="weights")
        self.bias = tf.Variable(tf.constant(intercept, dtype=tf.float32), name="bias")

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.float32, name=name) for name in FEATURES]
    )
    def predict(self, sepal_length, sepal_width, petal_length, petal_width):
        features = tf.stack([sepal_length, sepal_width, petal_length, petal_width], axis=1)
        logits = tf.matmul(features, self.weights) + self.bias
        return {
            "class_ids": tf.argmax(logits, axis=1)[:, tf.newaxis],
            "probabilities": tf.nn.softmax(logits),
        }


if __name__ == "__main__":
    model = train_logistic_regression()
    module = IrisLogisticRegression(model.coef_, model.intercept_)
    target = example_dir(__file__) / "model"
    shutil.rmtree(target, ignore_errors=True)
    tf.saved_model.save(module, str(target), signatures={"predict": module.predict})
    # Optional files that would make the folder differ from run to run (the fingerprint holds a
    # random id) or that git drops anyway (the empty assets folder).
    (target / "fingerprint.pb").unlink(missing_ok=True)
    assets = target / "assets"
    if assets.is_dir() and not any(assets.iterdir()):
        assets.rmdir()
    print(f"wrote {target}")
