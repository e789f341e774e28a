import json

# Project files are in the working directory (Cortex also mounted them at /mnt/project/).
with open("labels.json") as labels_file:
    labels = json.load(labels_file)

model = {}  # filled by init; one replica handles one request at a time


def init(metadata):
    with open(metadata["model"]) as model_file:
        model.update(json.load(model_file))


def predict(sample, metadata):
    features = [float(sample[name]) for name in model["features"]]
    scores = [
        intercept + sum(weight * value for weight, value in zip(weights, features))
        for weights, intercept in zip(model["coef"], model["intercept"])
    ]
    return labels[scores.index(max(scores))]
