feature_names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def pre_inference(sample, metadata):
    # the model's input is a float32 tensor of shape [batch, 4]
    return [[float(sample[name]) for name in feature_names]]


def post_inference(prediction, metadata):
    # prediction holds the model's outputs in order: labels [batch], probabilities [batch, 3]
    predicted_class_id = int(prediction[0][0])
    return metadata["labels"][predicted_class_id]
