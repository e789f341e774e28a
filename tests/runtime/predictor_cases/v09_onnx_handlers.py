# v0.9: request handlers around an ONNX model; `signature` is the session's input/output metadata.
def pre_inference(sample, input_metadata, metadata):
    return {input_metadata[0].name: [sample[name] for name in metadata["features"]]}


def post_inference(prediction, output_metadata, metadata):
    return {
        "label": metadata["labels"][int(prediction[0][0])],
        "outputs": [output.name for output in output_metadata],
    }
