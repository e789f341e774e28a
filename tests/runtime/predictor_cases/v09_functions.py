# v0.9: module functions init(metadata) and predict(sample, metadata).
state = {}


def init(metadata):
    state["scale"] = metadata["scale"]


def predict(sample, metadata):
    return {"scaled": sample["value"] * state["scale"], "unit": metadata["unit"]}
