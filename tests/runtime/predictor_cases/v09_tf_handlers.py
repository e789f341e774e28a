# v0.9: request handlers around a TensorFlow model, taking the parsed signature.
def pre_inference(sample, signature, metadata):
    assert signature == {"features": {"shape": [-1, 4], "type": "float32"}}, signature
    return {"features": [sample[name] for name in metadata["features"]]}


def post_inference(prediction, signature, metadata):
    return {"label": prediction["label"][0], "inputs": sorted(signature)}
