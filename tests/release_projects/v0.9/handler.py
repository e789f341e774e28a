labels = ["iris-setosa", "iris-versicolor", "iris-virginica"]


def pre_inference(sample, metadata):
    # metadata describes the model's inputs (a list of onnxruntime NodeArg)
    return {
        metadata[0].name: [
            [
                sample["sepal_length"],
                sample["sepal_width"],
                sample["petal_length"],
                sample["petal_width"],
            ]
        ]
    }


def post_inference(prediction, metadata):
    # metadata describes the model's outputs; the first one holds the class ids
    if metadata[0].name != "label":
        raise ValueError("unexpected first output: " + metadata[0].name)
    return labels[int(prediction[0][0])]
