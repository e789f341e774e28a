import json

# variables declared in global scope can be used safely in both functions
# (one replica handles one request at a time)
model = {}


def init(model_path, metadata):
    # model_path is the local path of `predictor.model` from cortex.yaml
    with open(model_path) as model_file:
        model.update(json.load(model_file))


def predict(sample, metadata):
    features = [float(sample[name]) for name in model["features"]]
    scores = [
        intercept + sum(weight * value for weight, value in zip(weights, features))
        for weights, intercept in zip(model["coef"], model["intercept"])
    ]
    return metadata["labels"][scores.index(max(scores))]
