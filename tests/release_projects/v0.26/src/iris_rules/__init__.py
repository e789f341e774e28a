def classify(petal_length, petal_width):
    if petal_length < 2.5:
        return "setosa"
    if petal_width < 1.75:
        return "versicolor"
    return "virginica"
